package families

import (
	"slices"
	"testing"

	"github.com/glimpse-vlm/glimpse/fusion"
)

func TestAllRegistered(t *testing.T) {
	got := fusion.Architectures()
	for _, want := range []string{"BlipForConditionalGeneration", "BlipForQuestionAnswering", "BlipForImageTextRetrieval", "CLIPModel", "VisionEncoderDecoderModel"} {
		if !slices.Contains(got, want) {
			t.Errorf("%s not registered (have %v)", want, got)
		}
	}
}
