package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics is the API's own registry (no global default registry): API
// request metrics, events, webhook deliveries, SSE clients, plus the
// collectors the SIP layer hands over through Config.
type metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	events     *prometheus.CounterVec
	deliveries *prometheus.CounterVec
	logins     *prometheus.CounterVec
}

func newMetrics(cfg *Config) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voicemail_api_requests_total", Help: "API requests by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "voicemail_api_request_duration_seconds", Help: "API request latency by route pattern (SSE streams excluded).",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voicemail_events_total", Help: "Events published (SSE and webhooks) by type.",
		}, []string{"type"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voicemail_webhook_deliveries_total", Help: "Webhook delivery attempts by result (delivered, retry, failed).",
		}, []string{"result"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voicemail_api_logins_total", Help: "API logins by result.",
		}, []string{"result"}),
	}
	cs := []prometheus.Collector{m.requests, m.duration, m.events, m.deliveries, m.logins,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})}
	if cfg.ActiveCalls != nil {
		f := cfg.ActiveCalls
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "voicemail_active_calls", Help: "Calls in progress.",
		}, func() float64 { return float64(f()) }))
	}
	cs = append(cs, cfg.Collectors...)
	for _, c := range cs {
		// A collector that clashes with another is logged, not fatal.
		if err := m.reg.Register(c); err != nil {
			cfg.Logger.Error("metrics: cannot register collector", "err", err)
		}
	}
	return m
}

// attach registers the SSE client gauge once the hub exists.
func (m *metrics) attach(h *hub) {
	_ = m.reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "voicemail_sse_clients", Help: "Connected Server-Sent Events clients.",
	}, func() float64 { return float64(h.count()) }))
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// statusWriter records the status; Unwrap lets http.ResponseController
// reach Flush (SSE).
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (m *metrics) serve(h http.Handler, w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	h.ServeHTTP(sw, r)
	route := r.Pattern // set by the ServeMux on this request
	if route == "" || route == "/" {
		route = "unmatched"
	}
	if sw.code == 0 {
		sw.code = http.StatusOK
	}
	m.requests.WithLabelValues(route, r.Method, strconv.Itoa(sw.code)).Inc()
	if route != "GET /api/v1/events" {
		m.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	}
}
