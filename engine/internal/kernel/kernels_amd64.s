//go:build amd64 && !purego

#include "textflag.h"

// Kernels other than the generated ones (panel_amd64.s): attention values
// for other head sizes, the bandwidth probe, the Mamba-2 scan, softmax and SwiGLU.

// ---- attention values: o[0:hd] = Σ_t p[t] · v[t*vstride : t*vstride+hd] ----
// (hd a multiple of 16 for AVX-512, 8 for AVX2; vstride in bytes; n >= 0)

// func axpyRowsAVX512(o *float32, p *float32, v *float32, vstride int, n int, hd int)
TEXT ·axpyRowsAVX512(SB), NOSPLIT, $0-48
	MOVQ o+0(FP), DI
	MOVQ p+8(FP), SI
	MOVQ v+16(FP), R8
	MOVQ vstride+24(FP), DX
	MOVQ n+32(FP), R11
	MOVQ hd+40(FP), R12
	XORQ R13, R13 // column offset in bytes
block64:
	MOVQ R12, AX
	SHLQ $2, AX
	SUBQ R13, AX
	CMPQ AX, $256
	JLT  block16
	VPXORD Z0, Z0, Z0; VPXORD Z1, Z1, Z1; VPXORD Z2, Z2, Z2; VPXORD Z3, Z3, Z3
	LEAQ (R8)(R13*1), R9
	XORQ CX, CX
loop64:
	CMPQ CX, R11
	JGE  store64
	VBROADCASTSS (SI)(CX*4), Z16
	VFMADD231PS 0(R9), Z16, Z0
	VFMADD231PS 64(R9), Z16, Z1
	VFMADD231PS 128(R9), Z16, Z2
	VFMADD231PS 192(R9), Z16, Z3
	ADDQ DX, R9
	INCQ CX
	JMP  loop64
store64:
	VMOVUPS Z0, 0(DI)(R13*1)
	VMOVUPS Z1, 64(DI)(R13*1)
	VMOVUPS Z2, 128(DI)(R13*1)
	VMOVUPS Z3, 192(DI)(R13*1)
	ADDQ $256, R13
	JMP  block64
block16:
	CMPQ AX, $64
	JLT  done
	VPXORD Z0, Z0, Z0
	LEAQ (R8)(R13*1), R9
	XORQ CX, CX
loop16:
	CMPQ CX, R11
	JGE  store16
	VBROADCASTSS (SI)(CX*4), Z16
	VFMADD231PS 0(R9), Z16, Z0
	ADDQ DX, R9
	INCQ CX
	JMP  loop16
store16:
	VMOVUPS Z0, 0(DI)(R13*1)
	ADDQ $64, R13
	MOVQ R12, AX
	SHLQ $2, AX
	SUBQ R13, AX
	JMP  block16
done:
	VZEROUPPER
	RET

// func axpyRowsAVX2(o *float32, p *float32, v *float32, vstride int, n int, hd int)
TEXT ·axpyRowsAVX2(SB), NOSPLIT, $0-48
	MOVQ o+0(FP), DI
	MOVQ p+8(FP), SI
	MOVQ v+16(FP), R8
	MOVQ vstride+24(FP), DX
	MOVQ n+32(FP), R11
	MOVQ hd+40(FP), R12
	XORQ R13, R13
block32:
	MOVQ R12, AX
	SHLQ $2, AX
	SUBQ R13, AX
	CMPQ AX, $128
	JLT  block8
	VXORPS Y0, Y0, Y0; VXORPS Y1, Y1, Y1; VXORPS Y2, Y2, Y2; VXORPS Y3, Y3, Y3
	LEAQ (R8)(R13*1), R9
	XORQ CX, CX
loop32:
	CMPQ CX, R11
	JGE  store32
	VBROADCASTSS (SI)(CX*4), Y8
	VFMADD231PS 0(R9), Y8, Y0
	VFMADD231PS 32(R9), Y8, Y1
	VFMADD231PS 64(R9), Y8, Y2
	VFMADD231PS 96(R9), Y8, Y3
	ADDQ DX, R9
	INCQ CX
	JMP  loop32
store32:
	VMOVUPS Y0, 0(DI)(R13*1)
	VMOVUPS Y1, 32(DI)(R13*1)
	VMOVUPS Y2, 64(DI)(R13*1)
	VMOVUPS Y3, 96(DI)(R13*1)
	ADDQ $128, R13
	JMP  block32
block8:
	CMPQ AX, $32
	JLT  done
	VXORPS Y0, Y0, Y0
	LEAQ (R8)(R13*1), R9
	XORQ CX, CX
loop8:
	CMPQ CX, R11
	JGE  store8
	VBROADCASTSS (SI)(CX*4), Y8
	VFMADD231PS 0(R9), Y8, Y0
	ADDQ DX, R9
	INCQ CX
	JMP  loop8
store8:
	VMOVUPS Y0, 0(DI)(R13*1)
	ADDQ $32, R13
	MOVQ R12, AX
	SHLQ $2, AX
	SUBQ R13, AX
	JMP  block8
done:
	VZEROUPPER
	RET

// ---- streaming read (bandwidth probe) ----

// func readSumAVX512(p *byte, n int) uint32 (n a multiple of 256)
TEXT ·readSumAVX512(SB), NOSPLIT, $0-20
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	VPXORD Z0, Z0, Z0; VPXORD Z1, Z1, Z1; VPXORD Z2, Z2, Z2; VPXORD Z3, Z3, Z3
	// Four streams, one per quarter of the buffer, read in step: the
	// packed weights' matrix-vector kernel reads four panels at a time,
	// and a single stream reads ~10% slower here.
	SHRQ $2, CX
	LEAQ (SI)(CX*1), DI
	LEAQ (DI)(CX*1), R8
	LEAQ (R8)(CX*1), R9
	XORQ AX, AX
	CMPQ CX, $0
	JLE  rdone
rloop:
	VPADDD 0(SI)(AX*1), Z0, Z0
	VPADDD 0(DI)(AX*1), Z1, Z1
	VPADDD 0(R8)(AX*1), Z2, Z2
	VPADDD 0(R9)(AX*1), Z3, Z3
	ADDQ $64, AX
	CMPQ AX, CX
	JLT  rloop
rdone:
	VPADDD Z1, Z0, Z0
	VPADDD Z3, Z2, Z2
	VPADDD Z2, Z0, Z0
	VEXTRACTI64X4 $1, Z0, Y1
	VPADDD Y1, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDD X1, X0, X0
	VPSHUFD $0x4e, X0, X1
	VPADDD X1, X0, X0
	VPSHUFD $0xb1, X0, X1
	VPADDD X1, X0, X0
	VMOVD X0, AX
	MOVL AX, ret+16(FP)
	VZEROUPPER
	RET

// func readSumAVX2(p *byte, n int) uint32 (n a multiple of 256)
TEXT ·readSumAVX2(SB), NOSPLIT, $0-20
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	VPXOR Y0, Y0, Y0; VPXOR Y1, Y1, Y1; VPXOR Y2, Y2, Y2; VPXOR Y3, Y3, Y3
	XORQ AX, AX
	CMPQ CX, $0
	JLE  r2done
r2loop:
	VPADDD 0(SI)(AX*1), Y0, Y0
	VPADDD 32(SI)(AX*1), Y1, Y1
	VPADDD 64(SI)(AX*1), Y2, Y2
	VPADDD 96(SI)(AX*1), Y3, Y3
	VPADDD 128(SI)(AX*1), Y0, Y0
	VPADDD 160(SI)(AX*1), Y1, Y1
	VPADDD 192(SI)(AX*1), Y2, Y2
	VPADDD 224(SI)(AX*1), Y3, Y3
	ADDQ $256, AX
	CMPQ AX, CX
	JLT  r2loop
r2done:
	VPADDD Y1, Y0, Y0
	VPADDD Y3, Y2, Y2
	VPADDD Y2, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDD X1, X0, X0
	VPSHUFD $0x4e, X0, X1
	VPADDD X1, X0, X0
	VPSHUFD $0xb1, X0, X1
	VPADDD X1, X0, X0
	VMOVD X0, AX
	MOVL AX, ret+16(FP)
	VZEROUPPER
	RET

// ---- Mamba-2 selective scan, one head ----
// For each of rows state rows S[p, 0:n] (n a multiple of 16 / 8):
//   S[p,:] = S[p,:]·dA + dtx[p]·B;  y[p] = S[p,:]·C
// (the caller adds D·x).

// func ssmRowsAVX512(s *float32, n int, rows int, dA float32, dtx *float32, b *float32, c *float32, y *float32)
TEXT ·ssmRowsAVX512(SB), NOSPLIT, $0-64
	MOVQ s+0(FP), DI
	MOVQ n+8(FP), R11
	MOVQ rows+16(FP), R12
	VBROADCASTSS dA+24(FP), Z31
	MOVQ dtx+32(FP), R8
	MOVQ b+40(FP), R9
	MOVQ c+48(FP), R10
	MOVQ y+56(FP), BX
	XORQ DX, DX // row
srow:
	CMPQ DX, R12
	JGE  sdone
	VBROADCASTSS (R8)(DX*4), Z30
	VPXORD Z0, Z0, Z0
	XORQ AX, AX
scol:
	VMULPS (DI)(AX*4), Z31, Z1
	VFMADD231PS (R9)(AX*4), Z30, Z1
	VMOVUPS Z1, (DI)(AX*4)
	VFMADD231PS (R10)(AX*4), Z1, Z0
	ADDQ $16, AX
	CMPQ AX, R11
	JLT  scol
	VEXTRACTF64X4 $1, Z0, Y28
	VADDPS Y28, Y0, Y0
	VEXTRACTF32X4 $1, Y0, X28
	VADDPS X28, X0, X0
	VPERMILPS $0x4e, X0, X28
	VADDPS X28, X0, X0
	VPERMILPS $0xb1, X0, X28
	VADDPS X28, X0, X0
	VMOVSS X0, (BX)(DX*4)
	LEAQ (DI)(R11*4), DI
	INCQ DX
	JMP  srow
sdone:
	VZEROUPPER
	RET

// func ssmRowsAVX2(s *float32, n int, rows int, dA float32, dtx *float32, b *float32, c *float32, y *float32)
TEXT ·ssmRowsAVX2(SB), NOSPLIT, $0-64
	MOVQ s+0(FP), DI
	MOVQ n+8(FP), R11
	MOVQ rows+16(FP), R12
	VBROADCASTSS dA+24(FP), Y15
	MOVQ dtx+32(FP), R8
	MOVQ b+40(FP), R9
	MOVQ c+48(FP), R10
	MOVQ y+56(FP), BX
	XORQ DX, DX
s2row:
	CMPQ DX, R12
	JGE  s2done
	VBROADCASTSS (R8)(DX*4), Y14
	VXORPS Y0, Y0, Y0
	XORQ AX, AX
s2col:
	VMULPS (DI)(AX*4), Y15, Y1
	VFMADD231PS (R9)(AX*4), Y14, Y1
	VMOVUPS Y1, (DI)(AX*4)
	VFMADD231PS (R10)(AX*4), Y1, Y0
	ADDQ $8, AX
	CMPQ AX, R11
	JLT  s2col
	VEXTRACTF128 $1, Y0, X13
	VADDPS X13, X0, X0
	VPERMILPS $0x4e, X0, X13
	VADDPS X13, X0, X0
	VPERMILPS $0xb1, X0, X13
	VADDPS X13, X0, X0
	VMOVSS X0, (BX)(DX*4)
	LEAQ (DI)(R11*4), DI
	INCQ DX
	JMP  s2row
s2done:
	VZEROUPPER
	RET

// ---- softmax (AVX-512) ----
// x[:n] = exp(x - max) / Σ exp(x - max), exp by range reduction
// (x = n·ln2 + r, |r| <= ln2/2), a degree-6 polynomial and VSCALEFPS
// (relative error ~1e-7). Lanes past n are masked.

DATA expc<>+0(SB)/4, $0x3fb8aa3b  // log2(e)
DATA expc<>+4(SB)/4, $0x3f318000  // ln2 hi
DATA expc<>+8(SB)/4, $0xb95e8083  // ln2 lo (-2.12194440e-4)
DATA expc<>+12(SB)/4, $0x3ab60b61 // 1/720
DATA expc<>+16(SB)/4, $0x3c088889 // 1/120
DATA expc<>+20(SB)/4, $0x3d2aaaab // 1/24
DATA expc<>+24(SB)/4, $0x3e2aaaab // 1/6
DATA expc<>+28(SB)/4, $0x3f000000 // 1/2
DATA expc<>+32(SB)/4, $0x3f800000 // 1
DATA expc<>+36(SB)/4, $0xc2ae0000 // -87
DATA expc<>+40(SB)/4, $0xff800000 // -inf
GLOBL expc<>(SB), RODATA|NOPTR, $44

// EXP sets z = exp(z) (z <= 0 here); clobbers Z24-Z27.
#define EXP(z) \
	VMAXPS Z23, z, z; \
	VMULPS Z16, z, Z24; \
	VRNDSCALEPS $0, Z24, Z24; \
	VFNMADD231PS Z17, Z24, z; \
	VFNMADD231PS Z18, Z24, z; \
	VMOVAPS Z19, Z25; \
	VFMADD213PS Z20, z, Z25; \
	VFMADD213PS Z21, z, Z25; \
	VFMADD213PS Z22, z, Z25; \
	VFMADD213PS Z26, z, Z25; \
	VFMADD213PS Z27, z, Z25; \
	VFMADD213PS Z27, z, Z25; \
	VSCALEFPS Z24, Z25, z

// func softmaxAVX512(x *float32, n int)
TEXT ·softmaxAVX512(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS expc<>+0(SB), Z16
	VBROADCASTSS expc<>+4(SB), Z17
	VBROADCASTSS expc<>+8(SB), Z18
	VBROADCASTSS expc<>+12(SB), Z19
	VBROADCASTSS expc<>+16(SB), Z20
	VBROADCASTSS expc<>+20(SB), Z21
	VBROADCASTSS expc<>+24(SB), Z22
	VBROADCASTSS expc<>+28(SB), Z26
	VBROADCASTSS expc<>+32(SB), Z27
	VBROADCASTSS expc<>+36(SB), Z23
	VBROADCASTSS expc<>+40(SB), Z28
	// tail mask K1 for the last n%16 lanes
	MOVQ CX, R9
	ANDQ $15, R9
	MOVQ CX, R10
	SUBQ R9, R10 // full part
	MOVQ $1, R8
	MOVQ R9, CX
	SHLQ CX, R8
	DECQ R8
	KMOVW R8, K1
	// 1. max
	VMOVAPS Z28, Z0
	XORQ AX, AX
smax:
	CMPQ AX, R10
	JGE  smaxt
	VMAXPS (SI)(AX*4), Z0, Z0
	ADDQ $16, AX
	JMP  smax
smaxt:
	VMOVAPS Z28, Z1
	VMOVUPS (SI)(AX*4), K1, Z1
	VMAXPS Z1, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VMAXPS Y1, Y0, Y0
	VEXTRACTF32X4 $1, Y0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0x4e, X0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0xb1, X0, X1
	VMAXPS X1, X0, X0
	VBROADCASTSS X0, Z29 // max
	// 2. exp(x - max) and the sum
	VPXORD Z30, Z30, Z30
	XORQ AX, AX
sexp:
	CMPQ AX, R10
	JGE  sexpt
	VMOVUPS (SI)(AX*4), Z2
	VSUBPS Z29, Z2, Z2
	EXP(Z2)
	VMOVUPS Z2, (SI)(AX*4)
	VADDPS Z2, Z30, Z30
	ADDQ $16, AX
	JMP  sexp
sexpt:
	CMPQ R9, $0
	JE   ssum
	VMOVAPS Z29, Z2
	VMOVUPS (SI)(AX*4), K1, Z2
	VSUBPS Z29, Z2, Z2
	EXP(Z2)
	VMOVUPS Z2, K1, (SI)(AX*4)
	VADDPS Z2, Z30, K1, Z30
ssum:
	VEXTRACTF64X4 $1, Z30, Y1
	VADDPS Y1, Y30, Y30
	VEXTRACTF32X4 $1, Y30, X1
	VADDPS X1, X30, X30
	VPERMILPS $0x4e, X30, X1
	VADDPS X1, X30, X30
	VPERMILPS $0xb1, X30, X1
	VADDPS X1, X30, X30
	VDIVPS X30, X27, X30 // 1/sum (X27 lanes are 1)
	VBROADCASTSS X30, Z30
	// 3. scale
	XORQ AX, AX
sscale:
	CMPQ AX, R10
	JGE  sscalet
	VMULPS (SI)(AX*4), Z30, Z2
	VMOVUPS Z2, (SI)(AX*4)
	ADDQ $16, AX
	JMP  sscale
sscalet:
	CMPQ R9, $0
	JE   sdone2
	VMOVUPS.Z (SI)(AX*4), K1, Z2
	VMULPS Z30, Z2, Z2
	VMOVUPS Z2, K1, (SI)(AX*4)
sdone2:
	VZEROUPPER
	RET

// ---- SwiGLU activation (AVX-512) ----
// g[i] = silu(g[i]) · u[i] with silu(x) = x / (1 + float32(math.Exp(float64(-x)))),
// bit for bit: the exponential is Go's amd64 math.Exp (its FMA path,
// Shibata's method) on eight float64 lanes. Blocks of 16 where some |x| >
// 700 or is NaN (math.Exp's overflow, underflow and special cases) are
// left to the caller: the kernel stops there and returns the index.

DATA swic<>+0(SB)/8, $1.4426950408889634073599246810018920  // log2(e)
DATA swic<>+8(SB)/8, $0.69314718055966295651160180568695068359375 // ln2 upper
DATA swic<>+16(SB)/8, $0.28235290563031577122588448175013436025525412068e-12 // ln2 lower
DATA swic<>+24(SB)/8, $0.0625
DATA swic<>+32(SB)/8, $2.4801587301587301587e-5
DATA swic<>+40(SB)/8, $1.9841269841269841270e-4
DATA swic<>+48(SB)/8, $1.3888888888888888889e-3
DATA swic<>+56(SB)/8, $8.3333333333333333333e-3
DATA swic<>+64(SB)/8, $4.1666666666666666667e-2
DATA swic<>+72(SB)/8, $1.6666666666666666667e-1
DATA swic<>+80(SB)/8, $0.5
DATA swic<>+88(SB)/8, $1.0
DATA swic<>+96(SB)/8, $2.0
DATA swic<>+104(SB)/8, $1023
DATA swic<>+112(SB)/8, $0x8000000000000000
DATA swic<>+120(SB)/4, $0x7fffffff // |x| mask (float32)
DATA swic<>+124(SB)/4, $700.0      // float32
DATA swic<>+128(SB)/4, $1.0        // float32
GLOBL swic<>(SB), RODATA|NOPTR, $132

// EXPPD sets z = math.Exp(z) for eight float64 lanes (|z| <= 700);
// clobbers t, p and yi (the ymm of an int32 vector).
#define EXPPD(z, t, p, yi, zi) \
	VMULPD Z16, z, t; \
	VCVTPD2DQ t, yi; \
	VCVTDQ2PD yi, t; \
	VFNMADD231PD Z17, t, z; \
	VFNMADD231PD Z18, t, z; \
	VMULPD Z19, z, z; \
	VMOVAPD Z20, p; \
	VFMADD213PD Z21, z, p; \
	VFMADD213PD Z22, z, p; \
	VFMADD213PD Z23, z, p; \
	VFMADD213PD Z24, z, p; \
	VFMADD213PD Z25, z, p; \
	VFMADD213PD Z26, z, p; \
	VFMADD213PD Z27, z, p; \
	VMULPD p, z, z; \
	VADDPD Z28, z, p; \
	VMULPD p, z, z; \
	VADDPD Z28, z, p; \
	VMULPD p, z, z; \
	VADDPD Z28, z, p; \
	VMULPD p, z, z; \
	VADDPD Z28, z, p; \
	VFMADD213PD Z27, p, z; \
	VPMOVSXDQ yi, zi; \
	VPADDQ Z29, zi, zi; \
	VPSLLQ $52, zi, zi; \
	VMULPD zi, z, z

// EXPCONSTS loads the constants EXPPD reads into Z16-Z29.
#define EXPCONSTS \
	VBROADCASTSD swic<>+0(SB), Z16; \
	VBROADCASTSD swic<>+8(SB), Z17; \
	VBROADCASTSD swic<>+16(SB), Z18; \
	VBROADCASTSD swic<>+24(SB), Z19; \
	VBROADCASTSD swic<>+32(SB), Z20; \
	VBROADCASTSD swic<>+40(SB), Z21; \
	VBROADCASTSD swic<>+48(SB), Z22; \
	VBROADCASTSD swic<>+56(SB), Z23; \
	VBROADCASTSD swic<>+64(SB), Z24; \
	VBROADCASTSD swic<>+72(SB), Z25; \
	VBROADCASTSD swic<>+80(SB), Z26; \
	VBROADCASTSD swic<>+88(SB), Z27; \
	VBROADCASTSD swic<>+96(SB), Z28; \
	VPBROADCASTQ swic<>+104(SB), Z29

// func swigluAVX512(gp, u *float32, n int) int
TEXT ·swigluAVX512(SB), NOSPLIT, $0-32
	MOVQ gp+0(FP), DI
	MOVQ u+8(FP), SI
	MOVQ n+16(FP), CX
	ANDQ $-16, CX
	EXPCONSTS
	VPBROADCASTQ swic<>+112(SB), Z30
	VBROADCASTSS swic<>+120(SB), Z31
	VBROADCASTSS swic<>+124(SB), Z15
	VBROADCASTSS swic<>+128(SB), Z14
	XORQ AX, AX
gloop:
	CMPQ AX, CX
	JGE  gdone
	VMOVUPS (DI)(AX*4), Z0
	VANDPS Z31, Z0, Z1
	VCMPPS $0x12, Z15, Z1, K1 // |x| <= 700, false for NaN
	KMOVW K1, DX
	CMPL DX, $0xffff
	JNE  gdone
	VCVTPS2PD Y0, Z2
	VEXTRACTF64X4 $1, Z0, Y3
	VCVTPS2PD Y3, Z3
	VXORPD Z30, Z2, Z2 // -x
	VXORPD Z30, Z3, Z3
	EXPPD(Z2, Z4, Z5, Y6, Z6)
	EXPPD(Z3, Z7, Z8, Y9, Z9)
	VCVTPD2PS Z2, Y2
	VCVTPD2PS Z3, Y3
	VINSERTF64X4 $1, Y3, Z2, Z2
	VADDPS Z14, Z2, Z2 // 1 + e
	VDIVPS Z2, Z0, Z0  // x / (1 + e)
	VMULPS (SI)(AX*4), Z0, Z0
	VMOVUPS Z0, (DI)(AX*4)
	ADDQ $16, AX
	JMP  gloop
gdone:
	MOVQ AX, ret+24(FP)
	VZEROUPPER
	RET

// ---- shifted exponential for sampling (AVX-512) ----
// e[i] = math.Exp(float64((l[i] - mx) * invT)) bit for bit (float32
// subtraction and product, then Go's math.Exp as in swigluAVX512), eight at
// a time; stops at the first block of 8 with a value below -700 or NaN
// (math.Exp's underflow and special cases, left to the caller) and
// returns the index.

DATA smpc<>+0(SB)/8, $-700.0
GLOBL smpc<>(SB), RODATA|NOPTR, $8

// func expShiftedAVX512(l *float32, n int, mx, invT float32, e *float64) int
TEXT ·expShiftedAVX512(SB), NOSPLIT, $0-40
	MOVQ l+0(FP), DI
	MOVQ n+8(FP), CX
	ANDQ $-8, CX
	VBROADCASTSS mx+16(FP), Y10
	VBROADCASTSS invT+20(FP), Y11
	MOVQ e+24(FP), SI
	EXPCONSTS
	VBROADCASTSD smpc<>+0(SB), Z15
	XORQ AX, AX
eloop:
	CMPQ AX, CX
	JGE  edone
	VMOVUPS (DI)(AX*4), Y0
	VSUBPS Y10, Y0, Y0 // l - mx
	VMULPS Y11, Y0, Y0 // (l - mx) * invT
	VCVTPS2PD Y0, Z2
	VCMPPD $0x1d, Z15, Z2, K1 // z >= -700, false for NaN
	KMOVB K1, DX
	CMPL DX, $0xff
	JNE  edone
	EXPPD(Z2, Z4, Z5, Y6, Z6)
	VMOVUPD Z2, (SI)(AX*8)
	ADDQ $8, AX
	JMP  eloop
edone:
	MOVQ AX, ret+32(FP)
	VZEROUPPER
	RET
