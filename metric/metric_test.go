package metric

import (
	"math"
	"testing"
)

func TestPassAtKMatchesEnumeration(t *testing.T) {
	// Enumerate every k-subset of n samples with c correct and count those
	// with at least one correct.
	for n := 1; n <= 8; n++ {
		for c := 0; c <= n; c++ {
			for k := 1; k <= n; k++ {
				hit, all := 0, 0
				for mask := 0; mask < 1<<n; mask++ {
					if popcount(mask) != k {
						continue
					}
					all++
					if mask&(1<<c-1) != 0 { // samples 0..c-1 are the correct ones
						hit++
					}
				}
				if got, want := PassAtK(n, c, k), float64(hit)/float64(all); math.Abs(got-want) > 1e-12 {
					t.Fatalf("PassAtK(%d,%d,%d) = %v, want %v", n, c, k, got, want)
				}
			}
		}
	}
}

func popcount(x int) int {
	n := 0
	for ; x > 0; x &= x - 1 {
		n++
	}
	return n
}
