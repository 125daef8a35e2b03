package media

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// WAVDecoder streams a WAV file as 8000 Hz mono samples with a bounded
// buffer, whatever the size of the file: the same formats and the same
// output as ReadWAV, except that the fmt chunk must come before the data
// chunk (ReadWAV would have to hold the whole data to accept the reverse).
type WAVDecoder struct {
	r        io.Reader
	f        wavFmt
	declared int64 // data chunk size from the header
	remain   int64 // data bytes still to read (the declared size; EOF may come first)
	raw      []byte
	have     int // bytes of raw holding a partial frame
	mono     []int16
	monoBuf  []int16
	rs       *resampler // nil at 8000 Hz
	eof      bool
}

// decodeFrames is how many frames one read converts.
const decodeFrames = 4096

// NewWAVDecoder reads the header of a WAV file up to the start of its
// audio. Chunks other than fmt and data are skipped without being kept.
func NewWAVDecoder(r io.Reader) (*WAVDecoder, error) {
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("%w: not a RIFF/WAVE file", ErrUnsupportedWAV)
		}
		return nil, err
	}
	if string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" {
		return nil, fmt.Errorf("%w: not a RIFF/WAVE file", ErrUnsupportedWAV)
	}
	d := &WAVDecoder{r: r}
	haveFmt := false
	for {
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return nil, fmt.Errorf("%w: missing fmt or data chunk", ErrUnsupportedWAV)
			}
			return nil, err
		}
		id := string(ch[0:4])
		size := int64(binary.LittleEndian.Uint32(ch[4:]))
		switch id {
		case "fmt ":
			// parseFmt reads at most 40 bytes; the rest is skipped.
			b := make([]byte, min(size, 64))
			n, err := io.ReadFull(r, b)
			if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
				return nil, err
			}
			if d.f, err = parseFmt(b[:n]); err != nil {
				return nil, err
			}
			if int64(n) < size {
				if err := skip(r, size-int64(n)+size&1); err != nil {
					return nil, err
				}
			} else if size&1 == 1 {
				_ = skip(r, 1)
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return nil, fmt.Errorf("%w: data chunk before fmt chunk", ErrUnsupportedWAV)
			}
			d.declared, d.remain = size, size
			d.raw = make([]byte, decodeFrames*d.f.blockAlign)
			d.monoBuf = make([]int16, decodeFrames)
			if d.f.rate != SampleRate {
				d.rs = newResampler(d.f.rate)
			}
			return d, nil
		default:
			if err := skip(r, size+size&1); err != nil {
				return nil, err
			}
		}
	}
}

// skip discards n bytes; running out is a missing chunk.
func skip(r io.Reader, n int64) error {
	got, err := io.CopyN(io.Discard, r, n)
	if got == n {
		return nil
	}
	if err == nil || err == io.EOF {
		return fmt.Errorf("%w: missing fmt or data chunk", ErrUnsupportedWAV)
	}
	return err
}

// DeclaredSamples is the length of the audio at 8000 Hz as the header
// announces it, or -1 when the header does not know (a data size of 0 or
// 0xFFFFFFFF, as streaming writers leave it). The header may lie: count
// what Read returns to enforce a limit.
func (d *WAVDecoder) DeclaredSamples() int64 {
	if d.declared == 0 || d.declared == math.MaxUint32 {
		return -1
	}
	frames := d.declared / int64(d.f.blockAlign)
	return frames * SampleRate / int64(d.f.rate)
}

// Read fills dst with the next samples; io.EOF after the last one.
func (d *WAVDecoder) Read(dst []int16) (int, error) {
	if len(dst) == 0 {
		return 0, nil
	}
	for {
		if d.rs != nil {
			if n := d.rs.emit(dst, d.eof); n > 0 {
				return n, nil
			}
		} else if len(d.mono) > 0 {
			n := copy(dst, d.mono)
			d.mono = d.mono[n:]
			return n, nil
		}
		if d.eof {
			return 0, io.EOF
		}
		if err := d.fill(); err != nil {
			return 0, err
		}
	}
}

// fill reads and mixes down the next frames.
func (d *WAVDecoder) fill() error {
	want := min(int64(len(d.raw)-d.have), d.remain)
	n, err := d.r.Read(d.raw[d.have : d.have+int(want)])
	d.remain -= int64(n)
	d.have += n
	switch {
	case err == io.EOF || d.remain == 0:
		d.eof = true
	case err != nil:
		return err
	}
	ba := d.f.blockAlign
	frames := d.have / ba
	mono := d.monoBuf[:frames]
	for i := range mono {
		fr := d.raw[i*ba:]
		var sum int32
		for c := 0; c < d.f.channels; c++ {
			sum += int32(sampleAt(d.f, fr, c))
		}
		mono[i] = int16(sum / int32(d.f.channels))
	}
	d.have = copy(d.raw, d.raw[frames*ba:d.have])
	if d.rs == nil {
		d.mono = mono
		return nil
	}
	d.rs.push(mono, d.eof)
	return nil
}

// resampler is resample (wav.go) as a stream: the same filter and the
// same interpolation points, so the output is the same sample for sample;
// it keeps only the input and filtered samples still needed.
type resampler struct {
	rate  int
	step  float64
	h     [resampleTaps]float64
	hsum  float64
	in    []int16 // in[0] is input sample inBase
	base  int64
	filt  []float64 // filt[0] is filtered sample fBase
	fBase int64
	nIn   int64 // input samples pushed
	o     int64 // next output sample
}

const resampleTaps = 31

func newResampler(rate int) *resampler {
	r := &resampler{rate: rate, step: float64(rate) / SampleRate}
	fc := 3600.0 / float64(rate)
	for i := range r.h {
		n := float64(i - resampleTaps/2)
		v := 2 * fc
		if n != 0 {
			v = math.Sin(2*math.Pi*fc*n) / (math.Pi * n)
		}
		v *= 0.54 - 0.46*math.Cos(2*math.Pi*float64(i)/(resampleTaps-1))
		r.h[i] = v
		r.hsum += v
	}
	return r
}

// push adds input samples and filters every sample whose window is
// complete (all of them at the end).
func (r *resampler) push(x []int16, eof bool) {
	r.in = append(r.in, x...)
	r.nIn += int64(len(x))
	upto := r.nIn - resampleTaps/2
	if eof {
		upto = r.nIn
	}
	for i := r.fBase + int64(len(r.filt)); i < upto; i++ {
		var acc float64
		for k := range r.h {
			j := i + int64(k) - resampleTaps/2
			if j >= 0 && j < r.nIn {
				acc += r.h[k] * float64(r.in[j-r.base])
			}
		}
		r.filt = append(r.filt, acc/r.hsum)
	}
	// Input before the next window start is no longer needed.
	if drop := r.fBase + int64(len(r.filt)) - resampleTaps/2 - r.base; drop > 0 {
		r.in = r.in[:copy(r.in, r.in[drop:])]
		r.base += drop
	}
}

// emit writes the output samples that the filtered samples so far allow.
func (r *resampler) emit(dst []int16, eof bool) int {
	nF := r.fBase + int64(len(r.filt))
	total := int64(-1)
	if eof {
		total = r.nIn * SampleRate / int64(r.rate)
	}
	n := 0
	for n < len(dst) {
		if eof && r.o >= total {
			break
		}
		pos := float64(r.o) * r.step
		j := int64(pos)
		if j >= nF || (!eof && j+1 >= nF) {
			break
		}
		v := r.filt[j-r.fBase]
		if j+1 < nF {
			v += (r.filt[j+1-r.fBase] - v) * (pos - float64(j))
		}
		dst[n] = clamp16(v)
		n++
		r.o++
	}
	if next := int64(float64(r.o)*r.step) - r.fBase; next > 0 && next <= int64(len(r.filt)) {
		r.filt = r.filt[:copy(r.filt, r.filt[next:])]
		r.fBase += next
	}
	return n
}
