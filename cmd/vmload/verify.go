package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vmserver/voicemail/media"
)

// recCheck is the verdict over the recordings of a run.
type recCheck struct {
	Files      int   `json:"files"`
	Exact      int   `json:"exact"`       // sample-exact
	OnePacket  int   `json:"one_packet"`  // within one packet (160 samples), exact included
	Short      int   `json:"short"`       // more than one packet short
	Long       int   `json:"long"`        // more than one packet long
	Broken     int   `json:"broken"`      // unreadable
	WorstShort int64 `json:"worst_short"` // samples
	Parts      int   `json:"parts"`       // .part files left (recordings never committed)

	// Content: every recording aligned on the audio sent and compared
	// 20 ms frame by 20 ms frame (content.go).
	FramesGood  int64 `json:"frames_good"`
	FramesTotal int64 `json:"frames_total"`
	FilesExact  int   `json:"files_every_frame_good"`
	NotAligned  int   `json:"files_not_aligned"` // the sent audio was not found at all
	// Recordings that lack the caller's first words (the caller spoke
	// before the server recorded), and the most audio so lost.
	StartMissing int `json:"files_start_missing"`
	WorstStartMS int `json:"worst_start_missing_ms"`
	// Completed calls without a message (discarded or never written):
	// their frames count as sent and not good.
	Missing int `json:"calls_without_file,omitempty"`
}

// wavSamples reads the sample count of a WAV file from its header.
func wavSamples(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return media.WAVSamples(f)
}

// listWAVs returns the message WAVs under a media root (greetings excluded)
// and the number of .part files.
func listWAVs(root string) (wavs []string, parts int, err error) {
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "greetings" {
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case strings.HasSuffix(p, ".wav"):
			wavs = append(wavs, p)
		case strings.HasSuffix(p, ".wav.part"):
			parts++
		}
		return nil
	})
	return wavs, parts, err
}

// waitRecordings polls until want WAVs exist and no part is left, or the
// count stops moving for stable, or timeout.
func waitRecordings(root string, want int, stable, timeout time.Duration) {
	end := time.Now().Add(timeout)
	last, since := -1, time.Now()
	for time.Now().Before(end) {
		w, parts, _ := listWAVs(root)
		if len(w) >= want && parts == 0 {
			return
		}
		if len(w) != last {
			last, since = len(w), time.Now()
		} else if time.Since(since) > stable {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// decodeSent turns the µ-law frames sent into the linear samples a
// faithful recording holds (the server stores G.711 decoded or as is; both
// read back through media.ReadWAV to the same values).
func decodeSent(frames [][]byte) []int16 {
	pcm := make([]int16, len(frames)*frameBytes)
	for i, f := range frames {
		media.PCMU.Decode(pcm[i*frameBytes:], f)
	}
	return pcm
}

// maxLead is how much audio before the caller's first packet a recording
// may hold and still be aligned (the caller starts 60 ms after the beep).
const maxLead = 2 * 8000

// checkRecordings checks every message WAV under root against the audio
// sent: length (as before) and content, frame by frame.
func checkRecordings(root string, sent []int16) (recCheck, error) {
	var rc recCheck
	wantSamples := int64(len(sent))
	wavs, parts, err := listWAVs(root)
	if err != nil {
		return rc, err
	}
	rc.Parts = parts
	for _, p := range wavs {
		rc.Files++
		n, err := wavSamples(p)
		if err != nil {
			rc.Broken++
			continue
		}
		var pcm []int16 // unreadable audio compares as all frames bad
		if b, err := os.ReadFile(p); err == nil {
			pcm, _ = media.ReadWAV(bytes.NewReader(b))
		}
		v := compareFrames(sent, pcm, maxLead)
		rc.FramesGood += int64(v.Good)
		rc.FramesTotal += int64(v.Total)
		if v.AllGood() {
			rc.FilesExact++
		}
		switch {
		case v.Offset == noAlign:
			rc.NotAligned++
		case v.Offset < 0:
			rc.StartMissing++
			rc.WorstStartMS = max(rc.WorstStartMS, -v.Offset/8)
		}
		d := n - wantSamples
		switch {
		case d == 0:
			rc.Exact++
			rc.OnePacket++
		case d >= -frameBytes && d <= frameBytes:
			rc.OnePacket++
		case d < 0:
			rc.Short++
		default:
			rc.Long++
		}
		if d < 0 {
			rc.WorstShort = max(rc.WorstShort, -d)
		}
	}
	return rc, nil
}

// expect accounts for completed calls that left no file: the frames
// they sent are nowhere, so they count in the total and not as good.
func (rc *recCheck) expect(completed, framesPerCall int) {
	if n := completed - rc.Files; n > 0 {
		rc.Missing = n
		rc.FramesTotal += int64(n * framesPerCall)
	}
}
