// Command mkdtmf writes PCMU RTP captures of in-band DTMF (dual tones in
// the audio, no telephone-event), for the access IVR's in-band test: sipp
// plays them with play_pcap_audio to an offer without telephone-event.
//
//	go run ./testcalls/mkdtmf -out testcalls/pcap
//
// Each file holds one key string: per key 100 ms of tone then 100 ms of
// silence (a space is 500 ms of silence), after 100 ms of leading silence,
// as 20 ms PCMU packets (payload type 0) with their own SSRC and sequence
// base. The output is deterministic.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"time"

	"github.com/vmserver/voicemail/media"
)

// files maps file name to the keys it presses.
var files = []struct{ name, keys string }{
	{"dtmf_inband_1234pound.pcap", "1234#"},
	// after the login: 1 (personal mailbox), 1 (play), 7 (delete), # (exit)
	{"dtmf_inband_menu.pcap", "1   1  7  #"},
}

func main() {
	out := flag.String("out", "testcalls/pcap", "output directory")
	flag.Parse()
	for _, f := range files {
		path := filepath.Join(*out, f.name)
		if err := os.WriteFile(path, capture(f.keys), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "mkdtmf:", err)
			os.Exit(1)
		}
		fmt.Println("mkdtmf: wrote", path)
	}
}

// Audio returns the 8 kHz PCM of keys: 100 ms silence, then per key 100 ms
// of tone and 100 ms of silence; a space adds 500 ms of silence.
func Audio(keys string) []int16 {
	pcm := make([]int16, 800)
	for _, k := range keys {
		if k == ' ' {
			pcm = append(pcm, make([]int16, 4000)...)
			continue
		}
		pcm = append(pcm, media.DTMFTone(k, 100*time.Millisecond)...)
		pcm = append(pcm, make([]int16, 800)...)
	}
	return pcm
}

func capture(keys string) []byte {
	pcm := Audio(keys)
	ssrc := crc32.ChecksumIEEE([]byte(keys)) // distinct per file, stable
	seq := uint16(ssrc >> 16)
	ts := ssrc ^ 0x5a5a5a5a
	var pkts [][]byte
	payload := make([]byte, 160)
	for i := 0; i+160 <= len(pcm); i += 160 {
		media.PCMU.Encode(payload, pcm[i:i+160])
		p := make([]byte, 12+160)
		p[0] = 0x80
		p[1] = 0
		if i == 0 {
			p[1] |= 0x80 // marker: start of a talkspurt
		}
		binary.BigEndian.PutUint16(p[2:], seq)
		binary.BigEndian.PutUint32(p[4:], ts)
		binary.BigEndian.PutUint32(p[8:], ssrc)
		copy(p[12:], payload)
		pkts = append(pkts, p)
		seq++
		ts += 160
	}
	return pcapFile(pkts)
}

// pcapFile wraps RTP packets in Ethernet/IPv4/UDP, 20 ms apart.
func pcapFile(pkts [][]byte) []byte {
	le, be := binary.LittleEndian, binary.BigEndian
	b := make([]byte, 24)
	le.PutUint32(b[0:], 0xa1b2c3d4)
	le.PutUint16(b[4:], 2)
	le.PutUint16(b[6:], 4)
	le.PutUint32(b[16:], 65535)
	le.PutUint32(b[20:], 1) // LINKTYPE_ETHERNET
	const baseSec = 1700000000
	src, dst := [4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}
	for i, rtp := range pkts {
		udpLen := 8 + len(rtp)
		ipLen := 20 + udpLen
		frame := make([]byte, 14+ipLen)
		copy(frame[0:6], []byte{0x02, 0, 0, 0, 0, 0x02})
		copy(frame[6:12], []byte{0x02, 0, 0, 0, 0, 0x01})
		be.PutUint16(frame[12:], 0x0800)
		ip := frame[14:34]
		ip[0] = 0x45
		be.PutUint16(ip[2:], uint16(ipLen))
		be.PutUint16(ip[4:], uint16(i+1))
		be.PutUint16(ip[6:], 0x4000)
		ip[8], ip[9] = 64, 17
		copy(ip[12:16], src[:])
		copy(ip[16:20], dst[:])
		be.PutUint16(ip[10:], csum(ip, 0))
		udp := frame[34:]
		be.PutUint16(udp[0:], 40000)
		be.PutUint16(udp[2:], 30000)
		be.PutUint16(udp[4:], uint16(udpLen))
		copy(udp[8:], rtp)
		pseudo := uint32(be.Uint16(src[0:])) + uint32(be.Uint16(src[2:])) +
			uint32(be.Uint16(dst[0:])) + uint32(be.Uint16(dst[2:])) + 17 + uint32(udpLen)
		c := csum(udp, pseudo)
		if c == 0 {
			c = 0xffff
		}
		be.PutUint16(udp[6:], c)
		usec := int64(i) * 20000
		ph := make([]byte, 16)
		le.PutUint32(ph[0:], uint32(baseSec+usec/1000000))
		le.PutUint32(ph[4:], uint32(usec%1000000))
		le.PutUint32(ph[8:], uint32(len(frame)))
		le.PutUint32(ph[12:], uint32(len(frame)))
		b = append(b, ph...)
		b = append(b, frame...)
	}
	return b
}

func csum(b []byte, sum uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = (sum & 0xffff) + sum>>16
	}
	return ^uint16(sum)
}
