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
}

func newCallMetrics() *callMetrics {
	return &callMetrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voicemail_calls_total",
			Help: "Calls by kind (deposit, access) and result (completed, cancelled, no_ack, or the SIP status that refused them).",
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
	}
}

// Collectors are the Prometheus collectors of signalling: calls, RTP
// packets of ended calls, recovered panics.
func (s *Server) Collectors() []prometheus.Collector {
	m := s.metrics
	return []prometheus.Collector{m.calls, m.rtp, m.panics, m.malformed.count, m.tcpRefused}
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
}
