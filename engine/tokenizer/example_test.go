package tokenizer_test

import (
	"fmt"

	"github.com/crucible-ml/crucible/engine/tokenizer"
)

func Example() {
	tok, err := tokenizer.Load("testdata/bpe_qwen2")
	if err != nil {
		fmt.Println(err)
		return
	}
	ids := tok.Encode("What is 2+3?<|im_end|>", false)
	fmt.Println(ids)
	fmt.Printf("%q\n", tok.Decode(ids, true))

	// Streaming: text comes out as soon as its characters are complete.
	st := tok.NewStream(false)
	for _, id := range tok.Encode("π≈3.14", false) {
		fmt.Printf("%q ", st.Add(id))
	}
	fmt.Printf("%q\n", st.Flush())
	// Output:
	// [57 318 296 223 20 13 21 33 2]
	// "What is 2+3?"
	// "" "π" "" "" "≈" "3" "." "1" "4" ""
}
