package store

// mwiSchema is schema version 3: MWI subscriptions (issue 4). Until that
// work lands it is an empty step, so the version numbers stay fixed.
const mwiSchema = `SELECT 1;`
