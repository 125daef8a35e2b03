package main

import "slices"

// frameSamples is one 20 ms frame at 8000 Hz.
const frameSamples = 160

// frameVerdict is the content comparison of one recording with the audio
// that was sent: the recording is aligned on the sent audio once, then
// compared 20 ms frame by 20 ms frame. A lost packet that the server filled
// with silence keeps the length exact but fails its frame here.
type frameVerdict struct {
	Offset int // samples of the recording before the first sent sample; -1: no alignment found
	Good   int // frames equal sample for sample
	Total  int // frames sent
}

// AllGood reports whether every frame sent is in the recording unchanged.
func (v frameVerdict) AllGood() bool { return v.Total > 0 && v.Good == v.Total }

// alignment returns where the sent audio starts in the recording: the
// smallest offset in [0, maxShift] at which one of the first few sent
// frames matches exactly (a frame lost at the start must not hide the rest),
// or -1. Frames that are all one value (digital silence) are skipped as
// anchors: they match anywhere there is silence.
func alignment(sent, rec []int16, maxShift int) int {
	const anchors = 25 // the first half second
	for f := 0; f < anchors && (f+1)*frameSamples <= len(sent); f++ {
		a := sent[f*frameSamples : (f+1)*frameSamples]
		if flat(a) {
			continue
		}
		for off := 0; off <= maxShift; off++ {
			s := off + f*frameSamples
			if s+frameSamples > len(rec) {
				break
			}
			if slices.Equal(rec[s:s+frameSamples], a) {
				return off
			}
		}
	}
	return -1
}

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
	if v.Offset < 0 {
		return v
	}
	for f := 0; f < v.Total; f++ {
		s := v.Offset + f*frameSamples
		if s+frameSamples > len(rec) {
			break
		}
		if slices.Equal(rec[s:s+frameSamples], sent[f*frameSamples:(f+1)*frameSamples]) {
			v.Good++
		}
	}
	return v
}
