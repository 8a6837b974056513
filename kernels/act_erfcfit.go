//go:build ignore

// act_erfcfit fits the polynomial used by the AVX2 exact-GELU kernel
// (GELUERF in ops_amd64.s) and reports the float32 accuracy it reaches.
// Run it from the repository root with
//
//	go run ./kernels/act_erfcfit.go
//
// With t = |x|/√2 and s = 1/(1 + t/2), erfc(t) = exp(−t²)·s·g(s), where g
// is smooth on s ∈ (0, 1] (g → 1/(2√π) as t → ∞). g is fitted by weighted
// least squares (relative error) in the monomial basis at Chebyshev nodes
// in s for t ∈ [0, 10]; beyond t ≈ 9.3 exp(−t²) is below float32's range
// and the kernel returns exactly 0 for the tail.
package main

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

const (
	degree = 9
	p      = 0.5
	tMax   = 10.0
	nodes  = 2000
)

func main() {
	sMin := 1 / (1 + p*tMax)
	a := mat.NewDense(nodes, degree+1, nil)
	b := mat.NewVecDense(nodes, nil)
	for i := 0; i < nodes; i++ {
		s := sMin + (1-sMin)*(0.5+0.5*math.Cos(math.Pi*(float64(i)+0.5)/nodes))
		t := (1/s - 1) / p
		g := math.Erfc(t) * math.Exp(t*t) / s
		for j := 0; j <= degree; j++ {
			a.Set(i, j, math.Pow(s, float64(j))/g)
		}
		b.SetVec(i, 1)
	}
	var x mat.VecDense
	if err := x.SolveVec(a, b); err != nil {
		panic(err)
	}
	c := make([]float32, degree+1)
	for j := range c {
		c[j] = float32(x.AtVec(j))
	}
	worstRel, worstAbs := 0.0, 0.0
	for xi := -14.0; xi <= 8; xi += 1e-4 {
		x32 := float32(xi)
		v := float64(x32)
		ref := 0.5 * v * math.Erfc(-v/math.Sqrt2)
		d := math.Abs(float64(gelu32(x32, c)) - ref)
		if math.Abs(ref) >= 1e-3 {
			worstRel = math.Max(worstRel, d/math.Abs(ref))
		} else {
			worstAbs = math.Max(worstAbs, d)
		}
	}
	fmt.Printf("degree %d: worst relative error %.3g (|gelu| ≥ 1e-3), worst absolute error %.3g elsewhere\n", degree, worstRel, worstAbs)
	for j := degree; j >= 0; j-- {
		fmt.Printf("VEC8(kErf%d, %#08x) // %.9g\n", j, math.Float32bits(c[j]), c[j])
	}
}

func fma(a, b, c float32) float32 { return float32(math.FMA(float64(a), float64(b), float64(c))) }

// gelu32 mirrors GELUERF in float32 (exp evaluated exactly).
func gelu32(x float32, c []float32) float32 {
	ax := float32(math.Abs(float64(x)))
	s := 1 / fma(float32(p/math.Sqrt2), ax, 1)
	g := c[len(c)-1]
	for j := len(c) - 2; j >= 0; j-- {
		g = fma(g, s, c[j])
	}
	g *= s
	hi := ax * ax
	lo := fma(ax, ax, -hi)
	e := float32(math.Exp(float64(-0.5 * hi)))
	e = fma(e, -0.5*lo, e)
	h := 0.5 * e * g
	if x < 0 {
		return x * h
	}
	return x * (1 - h)
}
