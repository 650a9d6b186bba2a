//go:build !(linux && amd64)

package sandbox

// seccompFilter returns "": the filter is built for x86-64 Linux only.
func seccompFilter() string { return "" }
