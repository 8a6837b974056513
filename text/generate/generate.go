// Package generate implements Hugging Face generate() decoding strategies
// (greedy and beam search, and later sampling) over any model that can
// extend sequences one step at a time.
package generate

import "context"

// Stepper is one request's decoding state inside a model: its rows
// (sequences; one for greedy, num_beams for beam search), each with its own
// self-attention KV cache, all sharing the request's cross-attention keys
// and values.
type Stepper interface {
	// Step appends tokens[r] (one or more ids) to row r for every row and
	// returns, per row, the logits (vocabulary-sized) of the last position.
	// The returned slices are owned by the caller until the next call.
	Step(ctx context.Context, tokens [][]int) ([][]float32, error)
	// Reorder rebuilds the rows so that new row r is a copy of old row
	// idx[r]; idx may repeat rows and change the row count (beam search
	// starts from one row and expands to num_beams).
	Reorder(idx []int)
}
