package main

import "slices"

// frameSamples is one 20 ms frame at 8000 Hz.
const frameSamples = 160

// frameVerdict is the content comparison of one recording with the audio
// that was sent: the recording is aligned on the sent audio once, then
// compared 20 ms frame by 20 ms frame. A lost packet that the server filled
// with silence keeps the length exact but fails its frame here.
type frameVerdict struct {
	Offset int // samples of the recording before the first sent sample (negative: the start is missing); noAlign: not found
	Good   int // frames equal sample for sample
	Total  int // frames sent
}

// AllGood reports whether every frame sent is in the recording unchanged.
func (v frameVerdict) AllGood() bool { return v.Total > 0 && v.Good == v.Total }

// alignment returns where the sent audio starts in the recording, in
// samples: positive when the recording holds audio before the caller's
// first frame (at most maxShift), negative when the recording lacks the
// start (the caller spoke before the server recorded; at most the anchor
// span). Anchors are the first two seconds of sent frames, tried in order,
// so that a start lost or a frame lost does not hide the rest; frames that
// are all one value (digital silence) match anywhere and are skipped. -1<<31
// (noAlign) when no anchor is found.
func alignment(sent, rec []int16, maxShift int) int {
	const anchors = 100 // 2 s
	for f := 0; f < anchors && (f+1)*frameSamples <= len(sent); f++ {
		a := sent[f*frameSamples : (f+1)*frameSamples]
		if flat(a) {
			continue
		}
		// The anchor sits at p = offset + f*frameSamples in the recording.
		for p := 0; p <= maxShift+f*frameSamples && p+frameSamples <= len(rec); p++ {
			if rec[p] == a[0] && slices.Equal(rec[p:p+frameSamples], a) {
				return p - f*frameSamples
			}
		}
	}
	return noAlign
}

// noAlign: the sent audio was not found in the recording.
const noAlign = -1 << 31

func flat(s []int16) bool {
	for _, x := range s[1:] {
		if x != s[0] {
			return false
		}
	}
	return true
}

// compareFrames aligns rec on sent and counts the sent frames found
// unchanged at their place. maxShift bounds the search for the start (the
// server may keep a little audio before the caller's first packet).
func compareFrames(sent, rec []int16, maxShift int) frameVerdict {
	v := frameVerdict{Total: len(sent) / frameSamples, Offset: alignment(sent, rec, maxShift)}
	if v.Offset == noAlign {
		return v
	}
	for f := 0; f < v.Total; f++ {
		s := v.Offset + f*frameSamples
		if s < 0 {
			continue // before the recording's start: missing
		}
		if s+frameSamples > len(rec) {
			break
		}
		if slices.Equal(rec[s:s+frameSamples], sent[f*frameSamples:(f+1)*frameSamples]) {
			v.Good++
		}
	}
	return v
}
