package mail

import "github.com/prometheus/client_golang/prometheus"

// metrics are per Notifier (not global), so that tests may run several.
type metrics struct {
	sent    prometheus.Counter
	failed  prometheus.Counter
	dropped prometheus.Counter
	queued  prometheus.Gauge
}

func newMetrics() *metrics {
	return &metrics{
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "voicemail_mail_sent_total",
			Help: "Notification mails accepted by the SMTP server.",
		}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "voicemail_mail_failed_total",
			Help: "Failed attempts to send a notification mail (each is retried).",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "voicemail_mail_dropped_total",
			Help: "Queued mails dropped because their message was deleted before it could be mailed.",
		}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "voicemail_mail_queued",
			Help: "Notification mails waiting in the outbox.",
		}),
	}
}

// Collectors returns the mail metrics for the /metrics registry. A nil
// Notifier (email off) has none.
func (n *Notifier) Collectors() []prometheus.Collector {
	if n == nil {
		return nil
	}
	return []prometheus.Collector{n.m.sent, n.m.failed, n.m.dropped, n.m.queued}
}
