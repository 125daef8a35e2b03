package main

import (
	"github.com/vmserver/voicemail/config"
	vsip "github.com/vmserver/voicemail/sip"
)

// floodConfig is the SIP flood control of the configuration (docs/sip.md).
func floodConfig(cfg *config.Config) vsip.FloodConfig {
	limit := func(r config.RateLimit) vsip.RateLimit { return vsip.RateLimit{Rate: r.Rate, Burst: r.Burst} }
	return vsip.FloodConfig{
		Limits: map[string]vsip.RateLimit{
			"INVITE":    limit(cfg.SIPRateInvite),
			"SUBSCRIBE": limit(cfg.SIPRateSubscribe),
			"REGISTER":  limit(cfg.SIPRateRegister),
			"OPTIONS":   limit(cfg.SIPRateOptions),
		},
		DropAfter:  cfg.SIPRateDropAfter,
		MaxSources: cfg.SIPRateMaxSources,
		Lockout: vsip.LockoutConfig{
			Failures: cfg.SIPLockoutFailures, Window: cfg.SIPLockoutWindow, Duration: cfg.SIPLockoutDuration,
			MaxSources: cfg.SIPRateMaxSources,
		},
		MaxSubscriptionsPerSource:  cfg.MWIMaxSubsPerSource,
		MaxSubscriptionsPerMailbox: cfg.MWIMaxSubsPerMailbox,
	}
}
