package media

import "math"

// In-band DTMF detection with the Goertzel algorithm, used only when no
// telephone-event payload was negotiated (never together with RFC 4733).
// Thresholds follow the usual practice (ITU-T Q.24, spandsp): twist within
// 8 dB normal / 4 dB reverse, each tone clearly above the others of its
// group, and the two tones carrying most of the frame's energy.

const (
	inbandBlock      = FrameSamples    // 20 ms: 50 Hz bins resolve the 70 Hz row spacing
	inbandMinHits    = 2               // 2 blocks = 40 ms minimum tone duration
	inbandMinPower   = 100.0 * 100 / 2 // per tone: amplitude 100 (≈ -50 dBFS)
	inbandNormTwist  = 6.31            // 8 dB: column may be this much weaker than row
	inbandRevTwist   = 2.51            // 4 dB: column may be this much stronger than row
	inbandRelPeak    = 6.31            // 8 dB over the next strongest tone of the group
	inbandEnergyFrac = 0.6             // the pair carries 60% of the block's energy
)

// goertzelCoef holds 2cos(2πf/fs) for the 4 row then 4 column frequencies.
var goertzelCoef = func() (c [8]float64) {
	for i, f := range dtmfRows {
		c[i] = 2 * math.Cos(2*math.Pi*f/SampleRate)
	}
	for i, f := range dtmfCols {
		c[4+i] = 2 * math.Cos(2*math.Pi*f/SampleRate)
	}
	return c
}()

// InbandDetector finds DTMF keys in decoded audio. Feed it PCM in any
// frame size; it analyses 20 ms blocks, reports a key after 40 ms of a
// valid tone pair, and reports it again only after a block without it.
// The zero value is ready to use; it does not allocate.
type InbandDetector struct {
	buf     [inbandBlock]int16
	n       int
	cand    rune // key of the current run of blocks (0 = none)
	hits    int
	emitted bool
}

// Feed analyses pcm and returns a key when a press is confirmed. Should
// pcm complete more than one block with a new key, only the first is
// returned (feed 20 ms frames to avoid that).
func (d *InbandDetector) Feed(pcm []int16) (digit rune, ok bool) {
	for len(pcm) > 0 {
		c := copy(d.buf[d.n:], pcm)
		d.n += c
		pcm = pcm[c:]
		if d.n < inbandBlock {
			break
		}
		d.n = 0
		if k, hit := d.block(); hit && !ok {
			digit, ok = k, true
		}
	}
	return digit, ok
}

// Reset forgets buffered audio and the current key.
func (d *InbandDetector) Reset() { *d = InbandDetector{} }

// block classifies the buffered block and updates the press state.
func (d *InbandDetector) block() (rune, bool) {
	k := classifyDTMF(d.buf[:])
	if k != d.cand {
		d.cand, d.hits, d.emitted = k, 0, false
	}
	if k == 0 {
		return 0, false
	}
	d.hits++
	if d.hits >= inbandMinHits && !d.emitted {
		d.emitted = true
		return k, true
	}
	return 0, false
}

// classifyDTMF returns the key whose tone pair dominates x, or 0.
func classifyDTMF(x []int16) rune {
	var s1, s2 [8]float64
	var energy float64
	for _, v := range x {
		f := float64(v)
		energy += f * f
		for i, c := range goertzelCoef {
			s0 := f + c*s1[i] - s2[i]
			s2[i], s1[i] = s1[i], s0
		}
	}
	// Normalise |X(f)|² to the energy of the matching sinusoid (A²N/2).
	var p [8]float64
	norm := 2 / float64(len(x))
	for i, c := range goertzelCoef {
		p[i] = (s1[i]*s1[i] + s2[i]*s2[i] - c*s1[i]*s2[i]) * norm
	}
	r, rp, r2 := peak(p[:4])
	c, cp, c2 := peak(p[4:])
	// Per-tone power is energy per sample (A²/2), so scale by N.
	minPower := inbandMinPower * float64(len(x))
	switch {
	case rp < minPower || cp < minPower:
		return 0
	case cp < rp/inbandNormTwist || cp > rp*inbandRevTwist:
		return 0
	case rp < r2*inbandRelPeak || cp < c2*inbandRelPeak:
		return 0
	case rp+cp < inbandEnergyFrac*energy:
		return 0
	}
	return dtmfKeys[r][c]
}

// peak returns the index and power of the strongest of p and the power of
// the second strongest.
func peak(p []float64) (idx int, top, second float64) {
	for i, v := range p {
		if v > top {
			idx, top, second = i, v, top
		} else if v > second {
			second = v
		}
	}
	return idx, top, second
}
