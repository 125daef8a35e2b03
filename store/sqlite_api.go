package store

// apiSchema is schema version 4: tokens, webhooks and the durable event
// queue (issue 5). Until that work lands it is an empty step, so the version
// numbers stay fixed.
const apiSchema = `SELECT 1;`
