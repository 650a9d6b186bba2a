package sandbox_test

import (
	"context"
	"fmt"
	"log"

	"github.com/crucible-ml/crucible/sandbox"
)

// A solution's code blocks run in one session, so later blocks see earlier
// variables. (A program using the package calls sandbox.MaybeRunChild first
// thing in main.)
func Example() {
	ctx := context.Background()
	pool, err := sandbox.NewPool(ctx, sandbox.Config{})
	if err != nil {
		log.Fatal(err) // errors.Is(err, sandbox.ErrNoIsolation) without user namespaces
	}
	defer pool.Close()
	defer pool.CloseSession("solution-1")
	pool.Execute(ctx, "solution-1", "import sympy as sp\nx = sp.symbols('x')", sandbox.ExecOptions{})
	res, err := pool.Execute(ctx, "solution-1", "sp.solve(x**2 - 4, x)", sandbox.ExecOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(res.Status, " ", res.Stdout)
}
