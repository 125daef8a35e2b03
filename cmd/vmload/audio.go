package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/vmserver/voicemail/ivr"
	"github.com/vmserver/voicemail/media"
)

// frameBytes is one 20 ms G.711 frame.
const frameBytes = 160

// loadAudio returns seconds*50 µ-law frames from a classic pcap (the RTP
// payloads of its UDP packets, in file order) or a raw .ulaw file. The
// frames are shared read-only by every call.
func loadAudio(path string, seconds int) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var payload []byte
	if strings.HasSuffix(path, ".pcap") {
		payload, err = pcapPayloads(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	} else {
		payload = b
	}
	want := seconds * 50
	if len(payload) < want*frameBytes {
		return nil, fmt.Errorf("%s: %d frames of audio, want %d (%d s)", path, len(payload)/frameBytes, want, seconds)
	}
	frames := make([][]byte, want)
	for i := range frames {
		frames[i] = payload[i*frameBytes : (i+1)*frameBytes : (i+1)*frameBytes]
	}
	return frames, nil
}

// pcapPayloads concatenates the RTP payloads (PT 0, 160 bytes) of a
// link-type-1 (Ethernet/IPv4/UDP) pcap.
func pcapPayloads(b []byte) ([]byte, error) {
	if len(b) < 24 || binary.LittleEndian.Uint32(b) != 0xa1b2c3d4 {
		return nil, errors.New("not a little-endian classic pcap")
	}
	if lt := binary.LittleEndian.Uint32(b[20:]); lt != 1 {
		return nil, fmt.Errorf("link type %d, want 1 (Ethernet)", lt)
	}
	var out []byte
	for off := 24; off+16 <= len(b); {
		incl := int(binary.LittleEndian.Uint32(b[off+8:]))
		pkt := b[off+16 : min(off+16+incl, len(b))]
		off += 16 + incl
		const eth, ip, udp = 14, 20, 8
		if len(pkt) < eth+ip+udp+12 {
			continue
		}
		ihl := int(pkt[eth]&0x0f) * 4
		rtpb := pkt[eth+ihl+udp:]
		if len(rtpb) < 12 || rtpb[0]>>6 != 2 || rtpb[1]&0x7f != 0 {
			continue
		}
		hl := 12 + 4*int(rtpb[0]&0x0f)
		if len(rtpb) < hl {
			continue
		}
		out = append(out, rtpb[hl:]...)
	}
	return out, nil
}

// writeULaw writes the frames as one raw µ-law file (for sipp's rtp_stream).
func writeULaw(path string, frames [][]byte) error {
	var b []byte
	for _, f := range frames {
		b = append(b, f...)
	}
	return os.WriteFile(path, b, 0o644)
}

// writeSilentPrompts writes a prompts.dir in which every prompt the deposit
// machine may play is one 20 ms frame of silence: the server then answers,
// beeps and records at once ("plain recording", no prompts).
func writeSilentPrompts(dir string) error {
	names := append([]string(nil), ivr.DepositPrompts...)
	for d := 0; d <= 9; d++ {
		names = append(names, fmt.Sprintf("digits/%d", d))
	}
	for _, n := range names {
		p := filepath.Join(dir, filepath.FromSlash(n)+".wav")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		w, err := media.NewWAVWriter(f, media.FormatPCM16)
		if err == nil {
			err = w.Write(make([]int16, media.FrameSamples))
		}
		if err == nil {
			err = w.Close()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}
