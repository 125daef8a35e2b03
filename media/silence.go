package media

// DefaultSilenceThreshold is the mean absolute amplitude (of 32768) under
// which a frame counts as silent: about -42 dBFS, above line noise and
// comfort noise, below quiet speech.
const DefaultSilenceThreshold int16 = 256

// SilenceDetector classifies frames (usually 20 ms) by their mean absolute
// amplitude and counts the run of trailing silent samples. It is used to
// end a recording after a long pause and to trim that pause from the file
// (WAVWriter.Truncate(d.SilentRun())). It does not allocate.
type SilenceDetector struct {
	threshold int64
	run       int64
}

// NewSilenceDetector returns a detector; threshold <= 0 means
// DefaultSilenceThreshold.
func NewSilenceDetector(threshold int16) *SilenceDetector {
	if threshold <= 0 {
		threshold = DefaultSilenceThreshold
	}
	return &SilenceDetector{threshold: int64(threshold)}
}

// Feed classifies one frame and returns the number of consecutive silent
// samples at the end of the audio fed so far (0 if this frame was loud).
func (d *SilenceDetector) Feed(frame []int16) (silentRun int64) {
	if len(frame) == 0 {
		return d.run
	}
	var sum int64
	for _, s := range frame {
		v := int64(s)
		if v < 0 {
			v = -v
		}
		sum += v
	}
	return d.classify(sum, len(frame))
}

// FeedG711 is Feed of the frame the G.711 codes decode to, without
// decoding it.
func (d *SilenceDetector) FeedG711(c Codec, codes []byte) (silentRun int64) {
	if len(codes) == 0 {
		return d.run
	}
	t := &ulawAbsTable
	if c == PCMA {
		t = &alawAbsTable
	}
	var sum int64
	for _, b := range codes {
		sum += int64(t[b])
	}
	return d.classify(sum, len(codes))
}

// classify counts a frame of n samples whose absolute values sum to sum.
func (d *SilenceDetector) classify(sum int64, n int) int64 {
	if sum < d.threshold*int64(n) {
		d.run += int64(n)
	} else {
		d.run = 0
	}
	return d.run
}

// The absolute value of what each G.711 code decodes to.
var (
	ulawAbsTable = absTable(&ulawDecTable)
	alawAbsTable = absTable(&alawDecTable)
)

func absTable(dec *[256]int16) (t [256]uint16) {
	for i, v := range dec {
		if v < 0 {
			t[i] = uint16(-int32(v))
		} else {
			t[i] = uint16(v)
		}
	}
	return t
}

// SilentRun returns the current run of trailing silent samples.
func (d *SilenceDetector) SilentRun() int64 { return d.run }

// Reset forgets the run (for example when a new recording starts).
func (d *SilenceDetector) Reset() { d.run = 0 }
