//go:build !linux

package kernel

func adviseHugePages(b []byte) {}
