package demo

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSceneDeterministic(t *testing.T) {
	for _, seed := range []uint64{0, 1, 42, HeldOutStart + 7} {
		a, b := NewScene(seed), NewScene(seed)
		if a.Caption() != b.Caption() {
			t.Fatalf("seed %d: captions differ: %q vs %q", seed, a.Caption(), b.Caption())
		}
		if !bytes.Equal(a.Render().Pix, b.Render().Pix) {
			t.Fatalf("seed %d: pixels differ between two renders", seed)
		}
	}
	if NewScene(1).Caption() == NewScene(2).Caption() && bytes.Equal(NewScene(1).Render().Pix, NewScene(2).Render().Pix) {
		t.Fatal("seeds 1 and 2 give the same scene")
	}
}

func TestCaptionRoundTrip(t *testing.T) {
	layouts := map[Layout]int{}
	for seed := uint64(0); seed < 500; seed++ {
		s := NewScene(seed)
		layouts[s.Layout]++
		d, err := ParseCaption(s.Caption())
		if err != nil {
			t.Fatal(err)
		}
		if !d.Equal(s.Describe()) {
			t.Fatalf("seed %d: parse(%q) = %+v, want %+v", seed, s.Caption(), d, s.Describe())
		}
		if n := len(s.Objects); n < 1 || n > 3 {
			t.Fatalf("seed %d: %d objects", seed, n)
		}
	}
	for _, l := range []Layout{Single, Vertical, Horizontal, Row} {
		if layouts[l] < 50 {
			t.Errorf("layout %d appears only %d times in 500 scenes", l, layouts[l])
		}
	}
}

func TestParseCaption(t *testing.T) {
	above := Description{Layout: Vertical, Objects: [][3]string{{"small", "red", "circle"}, {"large", "blue", "square"}}}
	tests := []struct {
		text string
		want *Description // nil: error
	}{
		{"a small red circle above a large blue square", &above},
		{"A large blue square below a small red circle.", &above},
		{"a small red circle", &Description{Layout: Single, Objects: [][3]string{{"small", "red", "circle"}}}},
		{"a small red circle right of a large blue star", &Description{Layout: Horizontal, Objects: [][3]string{{"large", "blue", "star"}, {"small", "red", "circle"}}}},
		{"a small red circle above", nil},
		{"a big red circle", nil},
		{"a small red circle, a small red circle", nil},
	}
	for _, tc := range tests {
		d, err := ParseCaption(tc.text)
		if tc.want == nil {
			if err == nil {
				t.Errorf("ParseCaption(%q) = %+v, want an error", tc.text, d)
			}
			continue
		}
		if err != nil || !d.Equal(*tc.want) {
			t.Errorf("ParseCaption(%q) = %+v, %v; want %+v", tc.text, d, err, *tc.want)
		}
	}
}

// Every answer must be checkable against the scene's objects.
func TestQAsConsistent(t *testing.T) {
	for seed := uint64(0); seed < 300; seed++ {
		s := NewScene(seed)
		qas := s.QAs()
		if len(qas) < 3 {
			t.Fatalf("seed %d: only %d QA pairs", seed, len(qas))
		}
		for _, q := range qas {
			switch {
			case strings.HasPrefix(q.Question, "how many"):
				if q.Answer != Counts[len(s.Objects)-1] {
					t.Fatalf("seed %d: %q -> %q", seed, q.Question, q.Answer)
				}
			case strings.HasPrefix(q.Question, "what color is the "):
				k := strings.TrimSuffix(strings.TrimPrefix(q.Question, "what color is the "), "?")
				if s.countShape(k) != 1 || !s.has(q.Answer, k) {
					t.Fatalf("seed %d: %q -> %q", seed, q.Question, q.Answer)
				}
			case strings.HasPrefix(q.Question, "is there "):
				w := strings.Fields(strings.TrimSuffix(q.Question, "?"))
				got := s.has(w[3], w[4])
				if (q.Answer == "yes") != got {
					t.Fatalf("seed %d: %q -> %q", seed, q.Question, q.Answer)
				}
			}
		}
	}
}

func TestRenderColours(t *testing.T) {
	// The pixel at a large object's centre has the object's colour.
	for seed := uint64(0); seed < 50; seed++ {
		s := NewScene(seed)
		img := s.Render()
		for _, o := range s.Objects {
			if o.Size != "large" || o.Shape == "star" {
				continue
			}
			c := img.RGBAAt(int(o.X), int(o.Y))
			if c != colorRGB[o.Color] {
				t.Fatalf("seed %d: centre of %s is %v, want %v", seed, o.Phrase(), c, colorRGB[o.Color])
			}
		}
	}
}

func TestWritePNG(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s.png")
	if err := WritePNG(3, p); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != Size || b.Dy() != Size {
		t.Fatalf("PNG is %v", b)
	}
	if err := WritePNG(3, filepath.Join(t.TempDir(), "no", "such", "dir.png")); err == nil {
		t.Fatal("writing into a missing directory succeeded")
	}
}
