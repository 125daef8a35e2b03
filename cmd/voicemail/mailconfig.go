package main

import (
	"github.com/vmserver/voicemail/config"
	"github.com/vmserver/voicemail/mail"
)

// mailConfig takes the smtp.* and http.public_url keys for the mail
// notifier (package mail does not read the server configuration).
func mailConfig(c *config.Config) mail.Config {
	return mail.Config{
		Host: c.SMTPHost, Port: c.SMTPPort, TLS: c.SMTPTLS, Username: c.SMTPUsername, Password: c.SMTPPassword,
		From: c.SMTPFrom, SubjectTemplate: c.SMTPSubjectTemplate, BodyTemplate: c.SMTPBodyTemplate,
		PublicURL: c.HTTPPublicURL, RetryBase: c.SMTPRetry, RetryMax: c.SMTPRetryMax,
	}
}
