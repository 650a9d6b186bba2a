// Package bench holds the measurements behind `crucible bench curate`,
// `crucible bench grade`, `crucible bench sandbox` and `crucible bench
// backend`: harnesses that drive the product packages through their exported
// API and return what they measured as values, for the command to print.
//
// Speeds depend on the machine and on what else runs on it, so a number means
// something only next to another measured in the same run (the generate path
// against a bare HTTP loop, a pool's new sessions against its cold starts).
// Tests check that a harness measures something and leaves nothing behind;
// they never assert a speed.
package bench
