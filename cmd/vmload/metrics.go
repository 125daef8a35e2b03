package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// serverCounters are the server's own RTP counters of ended calls
// (voicemail_rtp_packets_total by type, voicemail_rtp_rejected_total) and
// the Go runtime's allocation counters, as scraped from /metrics. A
// level's figures are the difference of two scrapes: before the first
// call and after the last call ended.
type serverCounters struct {
	Received  int64 `json:"received"`
	Lost      int64 `json:"lost"`
	Late      int64 `json:"late"`
	Duplicate int64 `json:"duplicate"`
	Dropped   int64 `json:"dropped"`
	Rejected  int64 `json:"rejected"`
	// The shared RTP port (media.rtp_mux): datagrams the kernel dropped
	// (receive buffer full) and those no call claimed.
	KernelDropped int64 `json:"kernel_dropped,omitempty"`
	Unmatched     int64 `json:"unmatched,omitempty"`
	// Heap allocations (objects, bytes): per completed call they do not
	// depend on how fast the machine is that day, so they show a change in
	// the code where CPU time on a shared machine cannot.
	Mallocs    int64 `json:"go_mallocs,omitempty"`
	AllocBytes int64 `json:"go_alloc_bytes,omitempty"`
}

func (a serverCounters) sub(b serverCounters) serverCounters {
	return serverCounters{a.Received - b.Received, a.Lost - b.Lost, a.Late - b.Late,
		a.Duplicate - b.Duplicate, a.Dropped - b.Dropped, a.Rejected - b.Rejected,
		a.KernelDropped - b.KernelDropped, a.Unmatched - b.Unmatched,
		a.Mallocs - b.Mallocs, a.AllocBytes - b.AllocBytes}
}

// parseServerCounters reads the counters from a Prometheus text
// exposition. Lines it does not know are ignored; a counter absent is 0
// (the server exports a label only once a call has ended).
func parseServerCounters(r io.Reader) (serverCounters, error) {
	var c serverCounters
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		// A sample may carry a timestamp after the value.
		value, _, _ = strings.Cut(strings.TrimSpace(value), " ")
		var dst *int64
		switch name {
		case `voicemail_rtp_packets_total{type="received"}`:
			dst = &c.Received
		case `voicemail_rtp_packets_total{type="lost"}`:
			dst = &c.Lost
		case `voicemail_rtp_packets_total{type="late"}`:
			dst = &c.Late
		case `voicemail_rtp_packets_total{type="duplicate"}`:
			dst = &c.Duplicate
		case `voicemail_rtp_packets_total{type="dropped"}`:
			dst = &c.Dropped
		case "voicemail_rtp_rejected_total":
			dst = &c.Rejected
		case `voicemail_rtp_shared_port_datagrams_total{fate="dropped"}`:
			dst = &c.KernelDropped
		case `voicemail_rtp_shared_port_datagrams_total{fate="unmatched"}`:
			dst = &c.Unmatched
		case "go_memstats_mallocs_total":
			dst = &c.Mallocs
		case "go_memstats_alloc_bytes_total":
			dst = &c.AllocBytes
		default:
			continue
		}
		f, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return c, fmt.Errorf("metrics: %s: %w", name, err)
		}
		*dst = int64(f)
	}
	return c, sc.Err()
}

// scrapeServer fetches url (the server's /metrics) and parses the counters.
func scrapeServer(ctx context.Context, url string) (serverCounters, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return serverCounters{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return serverCounters{}, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return serverCounters{}, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	return parseServerCounters(resp.Body)
}
