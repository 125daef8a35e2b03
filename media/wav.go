package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync"
)

// Format is the sample encoding of a WAV file the server writes.
type Format uint8

// The formats a WAVWriter can produce. The zero value is PCM16.
const (
	FormatPCM16 Format = iota // 16-bit linear PCM (WAVE_FORMAT_PCM)
	FormatULaw                // G.711 µ-law (WAVE_FORMAT_MULAW)
	FormatALaw                // G.711 A-law (WAVE_FORMAT_ALAW)
)

// WAVE format tags (RFC 2361 Appendix A).
const (
	wavTagPCM        = 0x0001
	wavTagALaw       = 0x0006
	wavTagMULaw      = 0x0007
	wavTagExtensible = 0xFFFE
)

// ErrUnsupportedWAV is wrapped by every error about a WAV file this package
// cannot read or repair.
var ErrUnsupportedWAV = errors.New("media: unsupported WAV")

// ParseFormat maps a configuration value ("pcm16", "ulaw", "alaw") to a Format.
func ParseFormat(s string) (Format, error) {
	switch s {
	case "pcm16", "":
		return FormatPCM16, nil
	case "ulaw":
		return FormatULaw, nil
	case "alaw":
		return FormatALaw, nil
	}
	return 0, fmt.Errorf("media: unknown WAV format %q (want pcm16, ulaw or alaw)", s)
}

// String returns the configuration name of f.
func (f Format) String() string {
	switch f {
	case FormatPCM16:
		return "pcm16"
	case FormatULaw:
		return "ulaw"
	case FormatALaw:
		return "alaw"
	}
	return "unknown"
}

func (f Format) bytesPerSample() int64 {
	if f == FormatPCM16 {
		return 2
	}
	return 1
}

// Header layouts. PCM: RIFF(12) fmt(8+16) data(8) = 44 bytes.
// G.711: RIFF(12) fmt(8+18) fact(8+4) data(8) = 58 bytes; non-PCM formats
// need cbSize and a fact chunk (Microsoft RIFF spec, "fact chunk").
const (
	pcmHeaderLen   = 44
	g711HeaderLen  = 58
	g711FactOffset = 46 // offset of the fact sample count
)

// WAVWriter streams 8000 Hz mono samples into a WAV file. The header is
// written with zero sizes and patched by Close, so a file cut short by a
// crash can be repaired by FixWAV.
//
// It holds up to half a second of samples before it writes them (one write
// per half second of a recording, however it arrives). For a PCM16 file
// it holds them as G.711 bytes, half the memory, for as long as every
// sample is one a G.711 codec decodes to, which is what a call delivers
// (the receiver decodes G.711): the bytes are expanded when written, so the
// file is the same. The first sample that is not (a tone, audio from
// elsewhere) turns the buffer into PCM bytes for the rest of the file.
type WAVWriter struct {
	// A frame's fields first, in one cache line.
	buf     []byte // not yet written: file bytes, or packed codes
	samples int64
	err     error
	format  Format
	packed  bool // buf holds pack's codes for a PCM16 file
	pack    Codec
	hdrDone bool // the header has reached ws
	closed  bool

	ws     io.WriteSeeker
	hdrLen int64
}

// wavBufSamples is what a WAVWriter holds before writing: 0.512 s.
const wavBufSamples = 4096

// wavScratch expands a packed buffer (and prefixes the first one with the
// header) for the write; shared, so a call does not keep 8 KiB for it.
var wavScratch = sync.Pool{New: func() any { return new([g711HeaderLen + 2*wavBufSamples]byte) }}

// NewWAVWriter returns a writer of format f to w, which should be at
// offset 0. The header reaches w with the first samples.
func NewWAVWriter(w io.WriteSeeker, f Format) (*WAVWriter, error) {
	if f > FormatALaw {
		return nil, fmt.Errorf("media: unknown WAV format %d", f)
	}
	ww := &WAVWriter{ws: w, format: f, packed: f == FormatPCM16, pack: PCMU}
	ww.hdrLen = int64(len(ww.appendHeader(nil, 0)))
	ww.buf = make([]byte, 0, wavBufSamples)
	return ww, nil
}

// appendHeader appends the header for dataLen bytes of samples to b.
func (w *WAVWriter) appendHeader(b []byte, dataLen int64) []byte {
	pad := dataLen & 1 // RIFF chunks are word aligned; the pad is outside the data size
	if w.format == FormatPCM16 {
		b = append(b, "RIFF\x00\x00\x00\x00WAVEfmt "...)
		h := b[len(b)-16:]
		le32(h[4:], uint32(36+dataLen+pad))
		b = le32a(b, 16)
		b = le16a(b, wavTagPCM)
		b = le16a(b, 1)            // mono
		b = le32a(b, SampleRate)   // sample rate
		b = le32a(b, SampleRate*2) // byte rate
		b = le16a(b, 2)            // block align
		b = le16a(b, 16)           // bits per sample
		b = append(b, "data"...)
		return le32a(b, uint32(dataLen))
	}
	tag := uint16(wavTagMULaw)
	if w.format == FormatALaw {
		tag = wavTagALaw
	}
	b = append(b, "RIFF\x00\x00\x00\x00WAVEfmt "...)
	h := b[len(b)-16:]
	le32(h[4:], uint32(50+dataLen+pad))
	b = le32a(b, 18)
	b = le16a(b, tag)
	b = le16a(b, 1)
	b = le32a(b, SampleRate)
	b = le32a(b, SampleRate)
	b = le16a(b, 1) // block align
	b = le16a(b, 8) // bits per sample
	b = le16a(b, 0) // cbSize
	b = append(b, "fact"...)
	b = le32a(b, 4)
	b = le32a(b, uint32(dataLen)) // one byte per sample
	b = append(b, "data"...)
	return le32a(b, uint32(dataLen))
}

// Write appends samples, encoded per the writer's format.
func (w *WAVWriter) Write(pcm []int16) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errors.New("media: write to closed WAVWriter")
	}
	for len(pcm) > 0 {
		if len(w.buf) == cap(w.buf) {
			if w.err = w.flush(); w.err != nil {
				return w.err
			}
		}
		var n int
		switch {
		case w.packed:
			n = min(len(pcm), cap(w.buf)-len(w.buf))
			n = w.packSamples(pcm[:n])
			if n == 0 {
				// Before anything is written, the audio may be A-law
				// whose first samples µ-law could also hold.
				if w.hdrDone || w.pack == PCMA || !w.repack(PCMA) {
					w.unpack()
				}
				continue
			}
		case w.format == FormatPCM16:
			n = min(len(pcm), (cap(w.buf)-len(w.buf))/2)
			b := w.buf[len(w.buf) : len(w.buf)+2*n]
			for i, s := range pcm[:n] {
				binary.LittleEndian.PutUint16(b[2*i:], uint16(s))
			}
			w.buf = w.buf[:len(w.buf)+2*n]
		default:
			n = min(len(pcm), cap(w.buf)-len(w.buf))
			w.codec().Encode(w.buf[len(w.buf):len(w.buf)+n], pcm[:n])
			w.buf = w.buf[:len(w.buf)+n]
		}
		w.samples += int64(n)
		pcm = pcm[n:]
	}
	return nil
}

// WriteG711 appends samples given as the G.711 codes of codec c without
// decoding them, if the writer keeps them as such: a G.711 file of that
// law, or a PCM16 file still buffering codes (of c, or re-coded to c while
// nothing has been written). Otherwise it returns false and writes
// nothing: Write the decoded samples instead.
func (w *WAVWriter) WriteG711(c Codec, codes []byte) (bool, error) {
	if w.err != nil {
		return true, w.err
	}
	if w.closed {
		return true, errors.New("media: write to closed WAVWriter")
	}
	switch {
	case w.packed:
		if c != w.pack && (w.hdrDone || !w.repack(c)) {
			return false, nil
		}
	case w.format == FormatPCM16 || c != w.codec():
		return false, nil
	}
	for len(codes) > 0 {
		if len(w.buf) == cap(w.buf) {
			if w.err = w.flush(); w.err != nil {
				return true, w.err
			}
		}
		n := copy(w.buf[len(w.buf):cap(w.buf)], codes)
		w.buf = w.buf[:len(w.buf)+n]
		w.samples += int64(n)
		codes = codes[n:]
	}
	return true, nil
}

// packSamples appends the codes of the leading samples of pcm that decode
// back to themselves and returns how many it took.
func (w *WAVWriter) packSamples(pcm []int16) int {
	enc, dec := &ulawTable, &ulawDecTable
	if w.pack == PCMA {
		enc, dec = &alawTable, &alawDecTable
	}
	b := w.buf[len(w.buf) : len(w.buf)+len(pcm)]
	b = b[:len(pcm)] // one bounds check
	// Code everything, then check without a branch per sample: a frame
	// either survives whole or is not G.711 at all.
	var diff int16
	for i, s := range pcm {
		c := enc[uint16(s)]
		b[i] = c
		diff |= dec[c] ^ s
	}
	n := len(pcm)
	if diff != 0 {
		n = 0
		for n < len(pcm) && dec[b[n]] == pcm[n] {
			n++
		}
	}
	w.buf = w.buf[:len(w.buf)+n]
	return n
}

// repack re-codes the buffer's samples in codec c if every one of them
// survives it, and makes c the codec of what follows.
func (w *WAVWriter) repack(c Codec) bool {
	from, enc, dec := w.decTable(), &ulawTable, &ulawDecTable
	if c == PCMA {
		enc, dec = &alawTable, &alawDecTable
	}
	for _, b := range w.buf {
		if s := from[b]; dec[enc[uint16(s)]] != s {
			return false
		}
	}
	for i, b := range w.buf {
		w.buf[i] = enc[uint16(from[b])]
	}
	w.pack = c
	return true
}

func (w *WAVWriter) decTable() *[256]int16 {
	if w.pack == PCMA {
		return &alawDecTable
	}
	return &ulawDecTable
}

// unpack turns the buffer of a packed PCM16 writer into PCM bytes, for good.
func (w *WAVWriter) unpack() {
	b := make([]byte, 0, 2*wavBufSamples)
	w.buf = w.appendUnpacked(b)
	w.packed = false
}

// appendUnpacked appends the buffer's samples as PCM16 bytes to b.
func (w *WAVWriter) appendUnpacked(b []byte) []byte {
	dec := w.decTable()
	n := len(b)
	b = b[:n+2*len(w.buf)]
	out, in := b[n:], w.buf
	// Four samples per store: 30 % faster than one at a time.
	for len(in) >= 4 && len(out) >= 8 {
		binary.LittleEndian.PutUint64(out, uint64(uint16(dec[in[0]]))|uint64(uint16(dec[in[1]]))<<16|
			uint64(uint16(dec[in[2]]))<<32|uint64(uint16(dec[in[3]]))<<48)
		in, out = in[4:], out[8:]
	}
	for i, c := range in {
		binary.LittleEndian.PutUint16(out[2*i:], uint16(dec[c]))
	}
	return b
}

// flush writes what the buffer holds, after the header if it has not been
// written yet.
func (w *WAVWriter) flush() error {
	if w.hdrDone && !w.packed {
		if len(w.buf) == 0 {
			return nil
		}
		_, err := w.ws.Write(w.buf)
		if err == nil {
			w.buf = w.buf[:0]
		}
		return err
	}
	sp := wavScratch.Get().(*[g711HeaderLen + 2*wavBufSamples]byte)
	defer wavScratch.Put(sp)
	b := sp[:0]
	if !w.hdrDone {
		b = w.appendHeader(b, 0)
	}
	if w.packed {
		b = w.appendUnpacked(b)
	} else {
		b = append(b, w.buf...)
	}
	_, err := w.ws.Write(b)
	if err == nil {
		w.hdrDone = true
		w.buf = w.buf[:0]
	}
	return err
}

func (w *WAVWriter) codec() Codec {
	if w.format == FormatALaw {
		return PCMA
	}
	return PCMU
}

// Samples returns the number of samples written (after any Truncate).
func (w *WAVWriter) Samples() int64 { return w.samples }

// Truncate drops the last n samples (for example the trailing silence a
// SilenceDetector counted) so Close records the shorter length. If the
// underlying writer has a Truncate(int64) method (an *os.File), the bytes
// are cut from the file as well; otherwise they stay after the data chunk.
func (w *WAVWriter) Truncate(n int64) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errors.New("media: truncate of closed WAVWriter")
	}
	if n <= 0 {
		return nil
	}
	n = min(n, w.samples)
	if w.err = w.flush(); w.err != nil {
		return w.err
	}
	w.samples -= n
	end := w.hdrLen + w.samples*w.format.bytesPerSample()
	if t, ok := w.ws.(interface{ Truncate(int64) error }); ok {
		if w.err = t.Truncate(end); w.err != nil {
			return w.err
		}
	}
	_, w.err = w.ws.Seek(end, io.SeekStart)
	return w.err
}

// Close pads an odd data chunk, patches the RIFF, data and fact sizes and
// leaves the offset at the end of the file. It does not close the
// underlying writer (the caller fsyncs and renames it).
func (w *WAVWriter) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err != nil {
		return w.err
	}
	dataLen := w.samples * w.format.bytesPerSample()
	if dataLen&1 == 1 {
		if len(w.buf) == cap(w.buf) {
			if w.err = w.flush(); w.err != nil {
				return w.err
			}
		}
		w.buf = append(w.buf, 0) // only G.711 files have odd lengths: never packed
	}
	if w.err = w.flush(); w.err != nil {
		return w.err
	}
	end, err := w.ws.Seek(0, io.SeekCurrent)
	if err != nil {
		w.err = err
		return err
	}
	if _, w.err = w.ws.Seek(0, io.SeekStart); w.err != nil {
		return w.err
	}
	var hdr [g711HeaderLen]byte
	if _, w.err = w.ws.Write(w.appendHeader(hdr[:0], dataLen)); w.err != nil {
		return w.err
	}
	_, w.err = w.ws.Seek(end, io.SeekStart)
	return w.err
}

// EncodeWAV returns pcm as a whole WAV file in format f, laid out as
// WAVWriter writes it (for audio that is already in memory, such as a
// greeting recorded on the phone).
func EncodeWAV(pcm []int16, f Format) ([]byte, error) {
	if f > FormatALaw {
		return nil, fmt.Errorf("media: unknown WAV format %d", f)
	}
	w := &WAVWriter{format: f}
	dataLen := int64(len(pcm)) * f.bytesPerSample()
	b := w.appendHeader(make([]byte, 0, g711HeaderLen+dataLen+1), dataLen)
	hdrLen := len(b)
	b = append(b, make([]byte, dataLen+dataLen&1)...)
	data := b[hdrLen : int64(hdrLen)+dataLen]
	if f == FormatPCM16 {
		for i, v := range pcm {
			binary.LittleEndian.PutUint16(data[2*i:], uint16(v))
		}
	} else {
		w.codec().Encode(data, pcm)
	}
	return b, nil
}

func le16(b []byte, v uint16)         { binary.LittleEndian.PutUint16(b, v) }
func le32(b []byte, v uint32)         { binary.LittleEndian.PutUint32(b, v) }
func le16a(b []byte, v uint16) []byte { return binary.LittleEndian.AppendUint16(b, v) }
func le32a(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }

// wavFmt is the part of a `fmt ` chunk the reader needs.
type wavFmt struct {
	tag        uint16 // after resolving WAVE_FORMAT_EXTENSIBLE
	channels   int
	rate       int
	blockAlign int
	bits       int
}

func parseFmt(b []byte) (wavFmt, error) {
	if len(b) < 16 {
		return wavFmt{}, fmt.Errorf("%w: fmt chunk of %d bytes", ErrUnsupportedWAV, len(b))
	}
	f := wavFmt{
		tag:        binary.LittleEndian.Uint16(b[0:]),
		channels:   int(binary.LittleEndian.Uint16(b[2:])),
		rate:       int(binary.LittleEndian.Uint32(b[4:])),
		blockAlign: int(binary.LittleEndian.Uint16(b[12:])),
		bits:       int(binary.LittleEndian.Uint16(b[14:])),
	}
	if f.tag == wavTagExtensible {
		// WAVEFORMATEXTENSIBLE: cbSize(2) validBits(2) channelMask(4) SubFormat GUID(16);
		// the GUID starts with the classic format tag.
		if len(b) < 40 {
			return f, fmt.Errorf("%w: short WAVE_FORMAT_EXTENSIBLE", ErrUnsupportedWAV)
		}
		f.tag = binary.LittleEndian.Uint16(b[24:])
	}
	switch {
	case f.tag == wavTagPCM && (f.bits == 8 || f.bits == 16):
	case (f.tag == wavTagMULaw || f.tag == wavTagALaw) && f.bits == 8:
	default:
		return f, fmt.Errorf("%w: format tag %#x with %d bits", ErrUnsupportedWAV, f.tag, f.bits)
	}
	if f.channels != 1 && f.channels != 2 {
		return f, fmt.Errorf("%w: %d channels", ErrUnsupportedWAV, f.channels)
	}
	if f.rate < 8000 || f.rate > 48000 {
		return f, fmt.Errorf("%w: sample rate %d", ErrUnsupportedWAV, f.rate)
	}
	if f.blockAlign != f.channels*f.bits/8 {
		return f, fmt.Errorf("%w: block align %d", ErrUnsupportedWAV, f.blockAlign)
	}
	return f, nil
}

// ReadWAV decodes a whole WAV file into 8000 Hz mono samples. It accepts
// PCM (8-bit unsigned, 16-bit), µ-law and A-law, also inside
// WAVE_FORMAT_EXTENSIBLE, mono or stereo (mixed down), at 8–48 kHz
// (resampled). Unknown chunks (LIST, cue, ...) are skipped; a data size
// beyond the end of the file is clamped to what is there.
func ReadWAV(r io.Reader) ([]int16, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, fmt.Errorf("%w: not a RIFF/WAVE file", ErrUnsupportedWAV)
	}
	var (
		f       wavFmt
		haveFmt bool
		data    []byte
		hasData bool
	)
	for off := 12; off+8 <= len(b); {
		id := string(b[off : off+4])
		size := int64(binary.LittleEndian.Uint32(b[off+4:]))
		body := int64(off + 8)
		end := min(body+size, int64(len(b)))
		switch id {
		case "fmt ":
			if f, err = parseFmt(b[body:end]); err != nil {
				return nil, err
			}
			haveFmt = true
		case "data":
			data, hasData = b[body:end], true
		}
		if hasData && haveFmt {
			break
		}
		off = int(end + (end-body)&1) // skip the pad byte of odd chunks
		if end == int64(len(b)) {
			break
		}
	}
	if !haveFmt || !hasData {
		return nil, fmt.Errorf("%w: missing fmt or data chunk", ErrUnsupportedWAV)
	}
	frames := len(data) / f.blockAlign
	out := make([]int16, frames)
	for i := range out {
		fr := data[i*f.blockAlign:]
		var sum int32
		for c := 0; c < f.channels; c++ {
			sum += int32(sampleAt(f, fr, c))
		}
		out[i] = int16(sum / int32(f.channels))
	}
	if f.rate != SampleRate {
		out = resample(out, f.rate)
	}
	return out, nil
}

// sampleAt decodes channel c of the frame starting at fr[0].
func sampleAt(f wavFmt, fr []byte, c int) int16 {
	switch f.tag {
	case wavTagMULaw:
		var d [1]int16
		PCMU.Decode(d[:], fr[c:c+1])
		return d[0]
	case wavTagALaw:
		var d [1]int16
		PCMA.Decode(d[:], fr[c:c+1])
		return d[0]
	}
	if f.bits == 8 {
		return int16(int(fr[c])-128) << 8 // 8-bit WAV PCM is unsigned
	}
	return int16(binary.LittleEndian.Uint16(fr[2*c:]))
}

// resample converts from rate to 8000 Hz: a windowed-sinc low-pass at
// 3.6 kHz (below the new Nyquist of 4 kHz, so nothing aliases) followed by
// linear interpolation. Good enough for prompts; not for music.
func resample(in []int16, rate int) []int16 {
	if len(in) == 0 {
		return nil
	}
	const taps = 31
	var h [taps]float64
	fc := 3600.0 / float64(rate) // cutoff in cycles per input sample
	var sum float64
	for i := range h {
		n := float64(i - taps/2)
		v := 2 * fc
		if n != 0 {
			v = math.Sin(2*math.Pi*fc*n) / (math.Pi * n)
		}
		v *= 0.54 - 0.46*math.Cos(2*math.Pi*float64(i)/(taps-1)) // Hamming window
		h[i] = v
		sum += v
	}
	filtered := make([]float64, len(in))
	for i := range in {
		var acc float64
		for k := range h {
			j := i + k - taps/2
			if j >= 0 && j < len(in) {
				acc += h[k] * float64(in[j])
			}
		}
		filtered[i] = acc / sum
	}
	n := int(int64(len(in)) * SampleRate / int64(rate))
	out := make([]int16, n)
	step := float64(rate) / SampleRate
	for i := range out {
		pos := float64(i) * step
		j := int(pos)
		frac := pos - float64(j)
		v := filtered[j]
		if j+1 < len(filtered) {
			v += (filtered[j+1] - v) * frac
		}
		out[i] = clamp16(v)
	}
	return out
}

func clamp16(v float64) int16 {
	switch {
	case v >= 32767:
		return 32767
	case v <= -32768:
		return -32768
	case v >= 0:
		return int16(v + 0.5)
	}
	return int16(v - 0.5)
}

// FixWAV repairs the header of a WAV file this package wrote whose writer
// died before Close: the data size is taken from the file length (whole
// samples only; a partial trailing sample is cut off), the RIFF, data and
// fact sizes are patched, an odd data chunk is padded, and the file is
// fsynced. A file whose header sizes are already consistent is left as is.
// f must be open for reading and writing. It returns the sample count.
func FixWAV(f *os.File) (samples int64, err error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := st.Size()
	hdr := make([]byte, min(size, 4096))
	if _, err := f.ReadAt(hdr, 0); err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	h, err := scanHeader(hdr)
	if err != nil {
		return 0, err
	}
	factOff, dataSzOff, dataOff, statedData := h.factOff, h.dataSzOff, h.dataOff, h.statedData
	align := int64(h.fmt.blockAlign)
	avail := size - dataOff
	// A finished file: the stated size fits exactly (plus a pad byte).
	if statedData > 0 && (avail == statedData || (statedData&1 == 1 && avail == statedData+1)) &&
		int64(binary.LittleEndian.Uint32(hdr[4:]))+8 == size {
		return statedData / align, nil
	}
	dataLen := avail - avail%align
	if dataLen != avail {
		if err := f.Truncate(dataOff + dataLen); err != nil {
			return 0, err
		}
	}
	end := dataOff + dataLen
	if dataLen&1 == 1 {
		if _, err := f.WriteAt([]byte{0}, end); err != nil {
			return 0, err
		}
		end++
	}
	var b [4]byte
	patch := func(off int64, v int64) error {
		le32(b[:], uint32(v))
		_, err := f.WriteAt(b[:], off)
		return err
	}
	samples = dataLen / align
	if err := patch(4, end-8); err != nil {
		return 0, err
	}
	if err := patch(int64(dataSzOff), dataLen); err != nil {
		return 0, err
	}
	if factOff >= 0 {
		if err := patch(int64(factOff), samples); err != nil {
			return 0, err
		}
	}
	return samples, f.Sync()
}

// wavHeader is where the chunks of a WAV header are.
type wavHeader struct {
	fmt        wavFmt
	factOff    int   // offset of the fact sample count, -1 when none
	dataSzOff  int   // offset of the data chunk's size
	dataOff    int64 // offset of the samples
	statedData int64 // the data size the header states
}

// scanHeader walks the chunks of the start of a WAV file up to its data
// chunk.
func scanHeader(hdr []byte) (wavHeader, error) {
	h := wavHeader{factOff: -1, dataSzOff: -1}
	if len(hdr) < 12 || string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" {
		return h, fmt.Errorf("%w: not a RIFF/WAVE header", ErrUnsupportedWAV)
	}
	haveFmt := false
	for off := 12; off+8 <= len(hdr); {
		id := string(hdr[off : off+4])
		sz := int(binary.LittleEndian.Uint32(hdr[off+4:]))
		body := off + 8
		if id == "data" {
			h.dataSzOff, h.dataOff, h.statedData = off+4, int64(body), int64(sz)
			break
		}
		if body+sz > len(hdr) {
			break // a header chunk runs past what was written: incomplete
		}
		switch id {
		case "fmt ":
			f, err := parseFmt(hdr[body : body+sz])
			if err != nil {
				return h, err
			}
			h.fmt, haveFmt = f, true
		case "fact":
			if sz >= 4 {
				h.factOff = body
			}
		}
		off = body + sz + sz&1
	}
	if !haveFmt || h.dataSzOff < 0 {
		return h, fmt.Errorf("%w: incomplete header", ErrUnsupportedWAV)
	}
	return h, nil
}

// WAVSamples returns the sample count a WAV file's header states, reading
// only the header (load tests check thousands of recordings).
func WAVSamples(r io.ReaderAt) (int64, error) {
	hdr := make([]byte, 4096)
	n, err := r.ReadAt(hdr, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	h, err := scanHeader(hdr[:n])
	if err != nil {
		return 0, err
	}
	return h.statedData / int64(h.fmt.blockAlign), nil
}
