// Package archtest holds the test that keeps the import rules of
// ARCHITECTURE.md true: every package of the module sits in a layer and
// imports only packages of lower layers. It has no code of its own.
package archtest
