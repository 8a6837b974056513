// Package families registers every model family with fusion: import it
// (for its side effects) wherever fusion.Load must know them all.
//
//	import _ "github.com/glimpse-vlm/glimpse/fusion/families"
package families

import (
	// BLIP: BlipForConditionalGeneration, BlipForQuestionAnswering,
	// BlipForImageTextRetrieval.
	_ "github.com/glimpse-vlm/glimpse/fusion/blip"
	// CLIPModel.
	_ "github.com/glimpse-vlm/glimpse/fusion/clip"
	// VisionEncoderDecoderModel (ViT + GPT-2).
	_ "github.com/glimpse-vlm/glimpse/fusion/vitgpt2"
)
