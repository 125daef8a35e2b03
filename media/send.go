package media

import (
	"math/rand/v2"

	"github.com/pion/rtp"
)

// rtpHeaderLen is the size of the header we send: no CSRC, no extension.
const rtpHeaderLen = 12

// packetizer builds outgoing RTP packets into one reused buffer, grown
// to the largest packet built (172 bytes for 20 ms of G.711), not sized
// for the largest possible one: at 2,000 calls that was 2.6 MiB of heap.
type packetizer struct {
	hdr rtp.Header
	out []byte
}

// buf returns the reused buffer, n bytes long.
func (p *packetizer) buf(n int) []byte {
	if cap(p.out) < n {
		p.out = make([]byte, n)
	}
	return p.out[:n]
}

// newPacketizer picks random SSRC, sequence and timestamp bases
// (RFC 3550 §5.1, §8), so streams are hard to guess and do not collide.
func newPacketizer() *packetizer {
	p := &packetizer{}
	p.hdr.Version = 2
	p.hdr.SSRC = rand.Uint32()
	p.hdr.SequenceNumber = uint16(rand.Uint32())
	p.hdr.Timestamp = rand.Uint32()
	return p
}

// build encodes pcm as one packet of `samples` samples (padding a short
// last frame with silence) and returns the packet, valid until the next
// call. It does not advance the sequence number or timestamp.
func (p *packetizer) build(c Codec, pcm []int16, samples int, marker bool) []byte {
	samples = min(samples, MaxPayload)
	return p.buildInto(p.buf(rtpHeaderLen+samples), c, pcm, samples, marker)
}

// buildInto is build into b, which holds at least the header and samples
// (at most MaxPayload).
func (p *packetizer) buildInto(b []byte, c Codec, pcm []int16, samples int, marker bool) []byte {
	p.hdr.PayloadType = uint8(c)
	p.hdr.Marker = marker
	n, err := p.hdr.MarshalTo(b)
	if err != nil { // cannot happen: the buffer always fits a 12-byte header
		panic(err)
	}
	payload := b[n : n+samples]
	k := min(len(pcm), samples)
	c.Encode(payload, pcm[:k])
	if k < samples {
		sil := c.SilenceByte()
		for i := k; i < samples; i++ {
			payload[i] = sil
		}
	}
	return b[:n+samples]
}

// buildCN returns a comfort noise packet (RFC 3389 §3) carrying only the
// noise level, valid until the next call.
func (p *packetizer) buildCN(pt, level uint8) []byte {
	p.hdr.PayloadType = pt
	p.hdr.Marker = false
	b := p.buf(rtpHeaderLen + 1)
	n, err := p.hdr.MarshalTo(b)
	if err != nil { // cannot happen: the buffer always fits a 12-byte header
		panic(err)
	}
	b[n] = level & 0x7f
	return b[:n+1]
}
