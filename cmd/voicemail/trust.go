package main

import (
	"context"
	"fmt"

	"github.com/vmserver/voicemail/config"
	vsip "github.com/vmserver/voicemail/sip"
	"github.com/vmserver/voicemail/sipauth"
	"github.com/vmserver/voicemail/store"
)

// sipTrust maps the trust and digest keys onto the SIP configuration
// (docs/sip.md). The nonce key derives from sip.auth_secret, else from a
// random key the first instance stores in the shared database, so that
// every instance verifies every instance's nonces.
func sipTrust(ctx context.Context, cfg *config.Config, st store.SIPAuthStore, c *vsip.Config) error {
	p, err := vsip.ParseTrustedProxies(cfg.SIPTrustedProxies)
	if err != nil {
		return fmt.Errorf("config key sip.trusted_proxies: %w", err)
	}
	c.TrustedProxies = p
	c.DepositAuth, c.AuthRealm = cfg.SIPDepositAuth, cfg.SIPAuthRealm
	c.SubscribeAuth, c.RegisterMaxExpires = cfg.MWISubscribeAuth, cfg.SIPRegisterMaxExpires
	secret := []byte(cfg.SIPAuthSecret)
	if len(secret) == 0 {
		if secret, err = st.SIPAuthKey(ctx); err != nil {
			return fmt.Errorf("sip digest nonce key: %w", err)
		}
	}
	c.NonceKey = sipauth.DeriveKey(secret)
	return nil
}
