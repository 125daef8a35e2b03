package media

import "github.com/zaf/g711"

// Codec is the static RTP payload type of a G.711 codec (RFC 3551 §6).
type Codec uint8

// The codecs the server speaks.
const (
	PCMU Codec = 0 // G.711 µ-law
	PCMA Codec = 8 // G.711 A-law
)

// String returns the encoding name used in SDP rtpmap lines.
func (c Codec) String() string {
	switch c {
	case PCMU:
		return "PCMU"
	case PCMA:
		return "PCMA"
	}
	return "unknown"
}

// Valid reports whether c is one of the supported codecs.
func (c Codec) Valid() bool { return c == PCMU || c == PCMA }

// Decode turns len(src) G.711 bytes into linear samples in dst.
// len(dst) must be >= len(src). Any codec other than PCMA decodes as PCMU.
func (c Codec) Decode(dst []int16, src []byte) {
	dst = dst[:len(src)] // one bounds check up front
	if c == PCMA {
		for i, b := range src {
			dst[i] = g711.DecodeAlawFrame(b)
		}
		return
	}
	for i, b := range src {
		dst[i] = g711.DecodeUlawFrame(b)
	}
}

// Encode turns len(src) linear samples into G.711 bytes in dst.
// len(dst) must be >= len(src). Any codec other than PCMA encodes as PCMU.
func (c Codec) Encode(dst []byte, src []int16) {
	dst = dst[:len(src)]
	t := &ulawTable
	if c == PCMA {
		t = &alawTable
	}
	for i, s := range src {
		dst[i] = t[uint16(s)]
	}
}

// The encoders as tables of every 16-bit sample (64 KiB each, built once
// and never written): a prompt is encoded for every call that plays it,
// and a lookup is several times cheaper than the arithmetic.
var (
	ulawTable = encodeTable(g711.EncodeUlawFrame)
	alawTable = encodeTable(g711.EncodeAlawFrame)
)

// The decoders as tables too: a WAVWriter checks with them that a sample
// survives G.711 before it keeps the sample's code (see WAVWriter).
var (
	ulawDecTable = decodeTable(g711.DecodeUlawFrame)
	alawDecTable = decodeTable(g711.DecodeAlawFrame)
)

func decodeTable(dec func(uint8) int16) (t [256]int16) {
	for i := range t {
		t[i] = dec(uint8(i))
	}
	return t
}

func encodeTable(enc func(int16) byte) (t [1 << 16]byte) {
	for i := range t {
		t[i] = enc(int16(uint16(i)))
	}
	return t
}

// SilenceByte is the code for a zero sample (0xFF in µ-law, 0xD5 in A-law).
func (c Codec) SilenceByte() byte {
	if c == PCMA {
		return g711.EncodeAlawFrame(0)
	}
	return g711.EncodeUlawFrame(0)
}
