// Package deps pins modules that features in progress will import, so that
// go.mod does not change under parallel work. Remove an import here once a
// real package imports it.
package deps

import (
	_ "github.com/emersion/go-smtp"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/wneessen/go-mail"
)
