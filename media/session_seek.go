package media

// Seek moves the current playback by delta samples (negative rewinds,
// positive skips ahead), clamped to its start and end; skipping to the end
// ends the playback with EventPlayDone on the next frame time, as if it had
// run out. It reports whether a playback was in progress. It does not
// allocate (the access IVR's '*' / '#' during a message, docs/ivr.md).
func (s *Session) Seek(delta int) bool {
	s.txMu.Lock()
	defer s.txMu.Unlock()
	if !s.playing {
		return false
	}
	s.pos = max(0, min(len(s.play), s.pos+delta))
	return true
}

// PlayPosition returns the position of the current playback in samples
// from its start, and false when nothing plays.
func (s *Session) PlayPosition() (int, bool) {
	s.txMu.Lock()
	defer s.txMu.Unlock()
	return s.pos, s.playing
}
