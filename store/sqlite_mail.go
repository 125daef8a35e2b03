package store

// mailSchema is schema version 5: the email outbox (issue 7). Until that
// work lands it is an empty step, so the version numbers stay fixed.
const mailSchema = `SELECT 1;`
