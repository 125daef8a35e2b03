package store

// MWIStore keeps MWI subscriptions (SPEC §6) so that they survive a restart.
type MWIStore interface{}
