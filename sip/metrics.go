package sip

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmserver/voicemail/media"
)

// callMetrics are the call, media and panic counters (sip/README.md).
type callMetrics struct {
	calls  *prometheus.CounterVec // by kind (deposit, access) and result
	rtp    *prometheus.CounterVec // packets by direction/fate
	panics *prometheus.CounterVec // recovered panics by where
	// malformed counts and rate-limits the log of unparsable input
	// (malformed.go); tcpRefused counts connections over the per-source cap.
	malformed  *malformedLog
	tcpRefused prometheus.Counter

	rejected prometheus.Counter
	rtcp     *prometheus.CounterVec   // by direction: sent, received, dropped
	jitter   *prometheus.HistogramVec // by direction: in (ours), out (the caller's report)
	rtt      prometheus.Histogram
	loss     *prometheus.HistogramVec // by direction: in, out
}

func newCallMetrics() *callMetrics {
	return &callMetrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voicemail_calls_total",
			Help: "Calls by kind (deposit, access) and result (completed, cancelled, no_ack, rtp_timeout, panic, error, or the SIP status that refused them).",
		}, []string{"kind", "result"}),
		rtp: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voicemail_rtp_packets_total",
			Help: "RTP packets of ended calls: received, lost, late, duplicate, dropped, sent.",
		}, []string{"type"}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voicemail_panics_total",
			Help: "Panics recovered in a request handler or a call, by where; the process kept running.",
		}, []string{"where"}),
		malformed: newMalformedLog(),
		tcpRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "voicemail_sip_tcp_refused_total",
			Help: "SIP TCP/TLS connections closed at once because their source already had sip.tcp_max_per_source.",
		}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "voicemail_rtp_rejected_total",
			Help: "RTP packets of ended calls refused by strict RTP: from a source or SSRC that was not accepted.",
		}),
		rtcp: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voicemail_rtcp_packets_total",
			Help: "RTCP compound packets of ended calls: sent, received (parsed from the caller), dropped.",
		}, []string{"direction"}),
		jitter: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "voicemail_call_jitter_seconds",
			Help:    "Interarrival jitter at the end of a call: in = the caller's audio as we measured it, out = ours as the caller reported it.",
			Buckets: []float64{.001, .002, .005, .01, .02, .04, .08, .16, .32},
		}, []string{"direction"}),
		rtt: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "voicemail_call_rtt_seconds",
			Help:    "Last round-trip time of a call from RTCP reports (calls with a reception report only).",
			Buckets: []float64{.005, .01, .02, .05, .1, .2, .4, .8, 1.6},
		}),
		loss: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "voicemail_call_packet_loss_ratio",
			Help:    "Share of audio packets lost in a call: in = from the caller, out = to the caller (its last RTCP report).",
			Buckets: []float64{0, .001, .005, .01, .02, .05, .1, .2, .5},
		}, []string{"direction"}),
	}
}

// Collectors are the Prometheus collectors of signalling: calls, RTP
// packets of ended calls, recovered panics.
func (s *Server) Collectors() []prometheus.Collector {
	m := s.metrics
	cs := []prometheus.Collector{m.calls, m.rtp, m.panics, m.malformed.count, m.tcpRefused, m.rejected, m.rtcp, m.jitter, m.rtt, m.loss,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "voicemail_sip_udp_dropped_total",
			Help: "SIP datagrams the kernel dropped because a UDP listener's receive buffer was full (docs/performance.md).",
		}, func() float64 { return float64(s.udpDropped()) })}
	if eng := s.deps.Engine; eng != nil {
		if _, ok := eng.SharedPortStats(); ok {
			cs = append(cs, sharedPortCollectors(eng)...)
		}
	}
	return append(cs, s.flood.collectors()...)
}

// sharedPortCollectors count what the shared RTP port (media.rtp_mux)
// lost outside any call: a growing "dropped" means the kernel buffer is
// too small for the load (docs/performance.md).
func sharedPortCollectors(eng *media.Engine) []prometheus.Collector {
	fate := func(name string, get func(media.SharedPortStats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "voicemail_rtp_shared_port_datagrams_total",
			Help:        "Datagrams the shared RTP port (media.rtp_mux) lost outside any call: unmatched (no call's address or SSRC), dropped (kernel receive buffer full), send_failed.",
			ConstLabels: prometheus.Labels{"fate": name},
		}, func() float64 {
			st, _ := eng.SharedPortStats()
			return float64(get(st))
		})
	}
	return []prometheus.Collector{
		fate("unmatched", func(st media.SharedPortStats) uint64 { return st.Unmatched }),
		fate("dropped", func(st media.SharedPortStats) uint64 { return st.Dropped }),
		fate("send_failed", func(st media.SharedPortStats) uint64 { return st.SendFailed }),
	}
}

func (m *callMetrics) call(access bool, result string) {
	kind := "deposit"
	if access {
		kind = "access"
	}
	m.calls.WithLabelValues(kind, result).Inc()
}

func (m *callMetrics) media(st media.Stats) {
	m.rtp.WithLabelValues("received").Add(float64(st.PacketsReceived))
	m.rtp.WithLabelValues("lost").Add(float64(st.PacketsLost))
	m.rtp.WithLabelValues("late").Add(float64(st.PacketsLate))
	m.rtp.WithLabelValues("duplicate").Add(float64(st.PacketsDuplicate))
	m.rtp.WithLabelValues("dropped").Add(float64(st.PacketsDropped))
	m.rtp.WithLabelValues("sent").Add(float64(st.PacketsSent))
	m.quality(st)
}

// quality records an ended call's RTCP and quality figures.
func (m *callMetrics) quality(st media.Stats) {
	m.rejected.Add(float64(st.PacketsRejected))
	m.rtcp.WithLabelValues("sent").Add(float64(st.RTCPSent))
	m.rtcp.WithLabelValues("received").Add(float64(st.RTCPReceived))
	m.rtcp.WithLabelValues("dropped").Add(float64(st.RTCPDropped))
	if st.PacketsReceived > 0 {
		m.jitter.WithLabelValues("in").Observe(st.Jitter.Seconds())
		m.loss.WithLabelValues("in").Observe(lossRatio(st))
	}
	if st.RemoteReports > 0 {
		m.jitter.WithLabelValues("out").Observe(st.RemoteJitter.Seconds())
		m.loss.WithLabelValues("out").Observe(st.RemoteFractionLost)
		if st.RTT > 0 {
			m.rtt.Observe(st.RTT.Seconds())
		}
	}
}

func lossRatio(st media.Stats) float64 {
	if total := st.PacketsReceived + st.PacketsLost; total > 0 {
		return float64(st.PacketsLost) / float64(total)
	}
	return 0
}

// logMedia is the end-of-call line with the call's media quality.
func (d *Dialog) logMedia(result string, st media.Stats) {
	d.log.Info("call media", "result", result,
		"packets_received", st.PacketsReceived, "packets_sent", st.PacketsSent,
		"packets_lost", st.PacketsLost, "packets_rejected", st.PacketsRejected,
		"jitter", st.Jitter, "jitter_max", st.JitterMax, "rtt", st.RTT, "rtt_max", st.RTTMax,
		"remote_jitter", st.RemoteJitter, "remote_lost", st.RemoteLost,
		"remote_fraction_lost", st.RemoteFractionLost,
		"rtcp_sent", st.RTCPSent, "rtcp_received", st.RTCPReceived, "remote_bye", st.RemoteBye)
}
