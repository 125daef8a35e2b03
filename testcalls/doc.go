// Package testcalls holds the end-to-end call tests of the voicemail server:
// sipp scenarios (scenarios/), the RTP captures they play (pcap/, made by
// mkpcap/), a small Go SIP/RTP client (siptest/) and the Go tests that start
// the real binary and place calls against it (go test ./testcalls/).
//
// See README.md.
package testcalls
