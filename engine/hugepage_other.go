//go:build !linux

package engine

func adviseHugePages(b []byte) {}
