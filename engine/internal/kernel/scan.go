package kernel

// SSMRows runs one head's Mamba-2 scan step on its state s ([rows, n]):
// for every row p, s[p,:] = s[p,:]·dA + dtx[p]·b and y[p] = s[p,:]·c (the
// caller adds the skip connection). b and c are [n], dtx and y [rows].
func SSMRows(s []float32, n, rows int, dA float32, dtx, b, c, y []float32) {
	if ssmRows(s, n, rows, dA, dtx, b, c, y) {
		return
	}
	for p := 0; p < rows; p++ {
		sp := s[p*n : (p+1)*n]
		var yv float32
		for j := range sp {
			sp[j] = sp[j]*dA + dtx[p]*b[j]
			yv += sp[j] * c[j]
		}
		y[p] = yv
	}
}
