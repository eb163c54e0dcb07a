package broker

// Test-only access to the key pruning the service's Run loop does once a
// second, so a test can retire a key without running the loop.
var PruneKeys = (*Service).pruneKeys
