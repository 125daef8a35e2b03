package store

// APIStore keeps the REST API's state (SPEC §8): tenant and user tokens,
// webhooks and the durable event queue.
type APIStore interface{}
