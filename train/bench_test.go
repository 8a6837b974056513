package train

import (
	"testing"

	"github.com/glimpse-vlm/glimpse/demo"
)

func BenchmarkCaptionSample(b *testing.B) {
	files := WordPieceFiles(demo.Words(), demo.Size, 32)
	m, err := NewModel(ArchCaption, DemoConfig(VocabSize(files)), files, 1)
	if err != nil {
		b.Fatal(err)
	}
	s := demo.NewScene(1)
	px := m.Pixels(s.Render())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := m.CaptionLoss(px, s.Caption(), 1); err != nil {
			b.Fatal(err)
		}
	}
}
