// Package demo is Glimpse's synthetic visual world: a deterministic, seeded
// generator of small scenes (one to three coloured shapes on a plain or
// lightly textured background), their canonical captions and
// question–answer pairs, train/held-out splits by seed range, a PNG
// writer, and the evaluation of captioning, VQA and matching models on
// held-out scenes.
//
// A scene is a pure function of its seed (math/rand/v2 PCG, no global
// state, no map iteration), so the same seed gives the same pixels,
// caption and questions on every machine.
package demo

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"strings"
)

// Size is the side of a scene in pixels.
const Size = 64

// A scene is a Grid×Grid layout of Cell×Cell-pixel cells; each object
// lies inside its own cell.
const (
	Grid = 4
	Cell = Size / Grid
)

// pick returns k distinct increasing indices in [0, Grid).
func pick(r *rand.Rand, k int) []int {
	p := r.Perm(Grid)[:k]
	for i := 1; i < len(p); i++ { // insertion sort
		for j := i; j > 0 && p[j] < p[j-1]; j-- {
			p[j], p[j-1] = p[j-1], p[j]
		}
	}
	return p
}

// Vocabularies of the world. Their order is part of the generator: a
// seed maps to indices into these lists.
var (
	// Colors are the shape colours.
	Colors = []string{"red", "green", "blue", "yellow", "purple", "orange"}
	// Shapes are the shape kinds.
	Shapes = []string{"circle", "square", "triangle", "star"}
	// Sizes are the two shape sizes.
	Sizes = []string{"small", "large"}
	// Counts names shape counts 1..3.
	Counts = []string{"one", "two", "three"}
)

var colorRGB = map[string]color.RGBA{
	"red":    {220, 30, 30, 255},
	"green":  {30, 160, 50, 255},
	"blue":   {30, 60, 220, 255},
	"yellow": {235, 215, 20, 255},
	"purple": {140, 40, 170, 255},
	"orange": {245, 130, 20, 255},
}

// Split ranges: train scenes use seeds [0, HeldOutStart), held-out scenes
// seeds [HeldOutStart, ∞).
const HeldOutStart uint64 = 1 << 40

// Object is one shape of a scene.
type Object struct {
	Color, Shape, Size string
	X, Y               float64 // centre in pixels
	R                  float64 // radius in pixels
}

// Phrase is "small red circle".
func (o Object) Phrase() string { return o.Size + " " + o.Color + " " + o.Shape }

// article is "an" before a vowel, else "a".
func article(word string) string {
	if strings.IndexByte("aeiou", word[0]) >= 0 {
		return "an"
	}
	return "a"
}

// Layout says how the objects are arranged.
type Layout int

const (
	// Single is one object.
	Single Layout = iota
	// Vertical is two objects, Objects[0] above Objects[1].
	Vertical
	// Horizontal is two objects, Objects[0] left of Objects[1].
	Horizontal
	// Row is three objects from left to right.
	Row
)

// QA is one question and its answer.
type QA struct {
	Question, Answer string
}

// Scene is one generated scene.
type Scene struct {
	Seed       uint64
	Layout     Layout
	Objects    []Object
	Background color.RGBA
	Texture    bool // light per-pixel noise on the background
}

// NewScene generates the scene of seed.
func NewScene(seed uint64) *Scene {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	s := &Scene{Seed: seed}
	n := 1 + r.IntN(3)
	switch n {
	case 1:
		s.Layout = Single
	case 2:
		s.Layout = Vertical
		if r.IntN(2) == 1 {
			s.Layout = Horizontal
		}
	default:
		s.Layout = Row
	}
	bg := 200 + r.IntN(50)
	tint := [3]int{r.IntN(20), r.IntN(20), r.IntN(20)}
	s.Background = color.RGBA{uint8(bg - tint[0]), uint8(bg - tint[1]), uint8(bg - tint[2]), 255}
	s.Texture = r.IntN(2) == 1
	// Objects sit in distinct cells of a Grid×Grid layout of Cell-pixel
	// cells (centre ± 1 px), wholly inside their cell: Single anywhere,
	// Vertical in one column, Horizontal and Row in one row, in caption
	// order (top to bottom, left to right).
	var cells [][2]int // (column, row)
	switch s.Layout {
	case Single:
		cells = [][2]int{{r.IntN(Grid), r.IntN(Grid)}}
	case Vertical:
		c, rows := r.IntN(Grid), pick(r, 2)
		cells = [][2]int{{c, rows[0]}, {c, rows[1]}}
	case Horizontal:
		row, cols := r.IntN(Grid), pick(r, 2)
		cells = [][2]int{{cols[0], row}, {cols[1], row}}
	default:
		row, cols := r.IntN(Grid), pick(r, 3)
		cells = [][2]int{{cols[0], row}, {cols[1], row}, {cols[2], row}}
	}
	// Distinct (colour, shape) pairs so that questions naming a shape or a
	// colour can be made unambiguous when possible.
	used := make([]bool, len(Colors)*len(Shapes))
	for i := 0; i < n; i++ {
		var c, k int
		for {
			c, k = r.IntN(len(Colors)), r.IntN(len(Shapes))
			if !used[c*len(Shapes)+k] {
				break
			}
		}
		used[c*len(Shapes)+k] = true
		o := Object{Color: Colors[c], Shape: Shapes[k], Size: Sizes[r.IntN(2)]}
		if o.Size == "small" {
			o.R = 4.5 + r.Float64()
		} else {
			o.R = 7 + 0.5*r.Float64()
		}
		o.X = float64(cells[i][0]*Cell+Cell/2) + 2*(r.Float64()-0.5)
		o.Y = float64(cells[i][1]*Cell+Cell/2) + 2*(r.Float64()-0.5)
		s.Objects = append(s.Objects, o)
	}
	return s
}

// HeldOut returns the i-th held-out scene.
func HeldOut(i int) *Scene { return NewScene(HeldOutStart + uint64(i)) }

// Caption is the scene's canonical caption, e.g. "a small red circle
// above a large blue square".
func (s *Scene) Caption() string {
	o := s.Objects
	switch s.Layout {
	case Vertical:
		return "a " + o[0].Phrase() + " above a " + o[1].Phrase()
	case Horizontal:
		return "a " + o[0].Phrase() + " left of a " + o[1].Phrase()
	case Row:
		return "a " + o[0].Phrase() + ", a " + o[1].Phrase() + " and a " + o[2].Phrase()
	}
	return "a " + o[0].Phrase()
}

// Description is a scene's content as a caption states it: the layout and
// the objects' attributes in caption order.
type Description struct {
	Layout  Layout
	Objects [][3]string // size, colour, shape
}

// Describe returns what Caption states.
func (s *Scene) Describe() Description {
	d := Description{Layout: s.Layout}
	for _, o := range s.Objects {
		d.Objects = append(d.Objects, [3]string{o.Size, o.Color, o.Shape})
	}
	return d
}

// Equal reports whether two descriptions state the same scene.
func (d Description) Equal(e Description) bool {
	if d.Layout != e.Layout || len(d.Objects) != len(e.Objects) {
		return false
	}
	for i := range d.Objects {
		if d.Objects[i] != e.Objects[i] {
			return false
		}
	}
	return true
}

// ParseCaption reads a caption in the world's grammar, also accepting the
// equivalent forms "A below B" and "A right of B" (objects swapped), with
// or without articles and punctuation, case-insensitively.
func ParseCaption(text string) (Description, error) {
	t := strings.ToLower(strings.TrimSpace(text))
	t = strings.NewReplacer(",", " , ", ".", " ").Replace(t)
	words := strings.Fields(t)
	var objs [][3]string
	var seps []string
	for i := 0; i < len(words); {
		w := words[i]
		switch {
		case w == "a" || w == "an" || w == "the":
			i++
		case w == "," || w == "and" || w == "above" || w == "below":
			seps = append(seps, w)
			i++
		case (w == "left" || w == "right") && i+1 < len(words) && words[i+1] == "of":
			seps = append(seps, w)
			i += 2
		case i+2 < len(words) && in(Sizes, w) && in(Colors, words[i+1]) && in(Shapes, words[i+2]):
			objs = append(objs, [3]string{w, words[i+1], words[i+2]})
			i += 3
		default:
			return Description{}, fmt.Errorf("demo: caption %q: unexpected word %q", text, w)
		}
	}
	d := Description{Objects: objs}
	switch {
	case len(objs) == 1 && len(seps) == 0:
		d.Layout = Single
	case len(objs) == 2 && len(seps) == 1:
		switch seps[0] {
		case "above":
			d.Layout = Vertical
		case "below":
			d.Layout = Vertical
			objs[0], objs[1] = objs[1], objs[0]
		case "left":
			d.Layout = Horizontal
		case "right":
			d.Layout = Horizontal
			objs[0], objs[1] = objs[1], objs[0]
		default:
			return d, fmt.Errorf("demo: caption %q: two objects joined by %q", text, seps[0])
		}
	case len(objs) == 3 && len(seps) == 2 && seps[0] == "," && seps[1] == "and":
		d.Layout = Row
	default:
		return d, fmt.Errorf("demo: caption %q does not follow the world's grammar", text)
	}
	return d, nil
}

func in(list []string, w string) bool {
	for _, x := range list {
		if x == w {
			return true
		}
	}
	return false
}

// QAs returns the scene's question–answer pairs: count, the colour, shape
// and size of uniquely named objects, existence (yes/no) and position
// (yes/no and "what is above/left of ..."). The list is deterministic.
func (s *Scene) QAs() []QA {
	r := rand.New(rand.NewPCG(s.Seed, 0x2545f4914f6cdd1d))
	o := s.Objects
	qa := []QA{{"how many shapes are there?", Counts[len(o)-1]}}
	for i, x := range o {
		if s.countShape(x.Shape) == 1 {
			qa = append(qa, QA{"what color is the " + x.Shape + "?", x.Color})
			qa = append(qa, QA{"what size is the " + x.Shape + "?", x.Size})
		}
		if s.countColor(x.Color) == 1 {
			qa = append(qa, QA{"what shape is the " + x.Color + " object?", x.Shape})
		}
		if s.Layout == Vertical || s.Layout == Horizontal {
			other := o[1-i]
			rel := "above"
			if s.Layout == Horizontal {
				rel = "left of"
			}
			if i == 0 {
				qa = append(qa, QA{"is the " + x.Color + " " + x.Shape + " " + rel + " the " + other.Color + " " + other.Shape + "?", "yes"})
			} else {
				qa = append(qa, QA{"is the " + x.Color + " " + x.Shape + " " + rel + " the " + other.Color + " " + other.Shape + "?", "no"})
			}
		}
	}
	if s.Layout == Vertical && s.countShape(o[1].Shape) == 1 {
		qa = append(qa, QA{"what is above the " + o[1].Shape + "?", o[0].Shape})
	}
	if s.Layout == Horizontal && s.countShape(o[1].Shape) == 1 {
		qa = append(qa, QA{"what is left of the " + o[1].Shape + "?", o[0].Shape})
	}
	// Existence: one present object and one absent (colour, shape) pair.
	x := o[r.IntN(len(o))]
	qa = append(qa, QA{"is there " + article(x.Color) + " " + x.Color + " " + x.Shape + "?", "yes"})
	for {
		c, k := Colors[r.IntN(len(Colors))], Shapes[r.IntN(len(Shapes))]
		if !s.has(c, k) {
			qa = append(qa, QA{"is there " + article(c) + " " + c + " " + k + "?", "no"})
			break
		}
	}
	return qa
}

func (s *Scene) countShape(k string) int {
	n := 0
	for _, o := range s.Objects {
		if o.Shape == k {
			n++
		}
	}
	return n
}

func (s *Scene) countColor(c string) int {
	n := 0
	for _, o := range s.Objects {
		if o.Color == c {
			n++
		}
	}
	return n
}

func (s *Scene) has(c, k string) bool {
	for _, o := range s.Objects {
		if o.Color == c && o.Shape == k {
			return true
		}
	}
	return false
}

// Render draws the scene (Size×Size RGBA).
func (s *Scene) Render() *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, Size, Size))
	r := rand.New(rand.NewPCG(s.Seed, 0x5851f42d4c957f2d))
	for y := 0; y < Size; y++ {
		for x := 0; x < Size; x++ {
			c := s.Background
			if s.Texture {
				d := r.IntN(17) - 8
				c = color.RGBA{clamp(int(c.R) + d), clamp(int(c.G) + d), clamp(int(c.B) + d), 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	for _, o := range s.Objects {
		c := colorRGB[o.Color]
		for y := 0; y < Size; y++ {
			for x := 0; x < Size; x++ {
				// 2×2 supersampling for smooth edges.
				hits := 0
				for sy := 0; sy < 2; sy++ {
					for sx := 0; sx < 2; sx++ {
						if inside(o, float64(x)+0.25+0.5*float64(sx)-o.X, float64(y)+0.25+0.5*float64(sy)-o.Y) {
							hits++
						}
					}
				}
				if hits == 0 {
					continue
				}
				b := img.RGBAAt(x, y)
				mix := func(a, b uint8) uint8 { return uint8((int(a)*hits + int(b)*(4-hits) + 2) / 4) }
				img.SetRGBA(x, y, color.RGBA{mix(c.R, b.R), mix(c.G, b.G), mix(c.B, b.B), 255})
			}
		}
	}
	return img
}

func clamp(v int) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// inside reports whether the offset (dx, dy) from an object's centre is
// inside its shape.
func inside(o Object, dx, dy float64) bool {
	r := o.R
	switch o.Shape {
	case "circle":
		return dx*dx+dy*dy <= r*r
	case "square":
		h := r * 0.85
		return math.Abs(dx) <= h && math.Abs(dy) <= h
	case "triangle":
		// Upward isosceles triangle with apex at (0, −r), base at y = +0.8r.
		if dy < -r || dy > 0.8*r {
			return false
		}
		half := (dy + r) / (1.8 * r) * r
		return math.Abs(dx) <= half
	case "star":
		return inStar(dx, dy, r)
	}
	return false
}

// inStar tests a five-pointed star of outer radius r (inner 0.45r), one
// point up, by the polar boundary between alternating vertices.
func inStar(dx, dy, r float64) bool {
	d := math.Hypot(dx, dy)
	if d > r {
		return false
	}
	a := math.Atan2(dx, -dy) // 0 = up, clockwise
	if a < 0 {
		a += 2 * math.Pi
	}
	seg := math.Pi / 5
	k := math.Floor(a / seg)
	// vertices alternate outer (even k) and inner (odd k)
	r0, r1 := r, 0.45*r
	if int(k)%2 == 1 {
		r0, r1 = r1, r0
	}
	// boundary point on the straight edge between the two vertices
	a0, a1 := k*seg, (k+1)*seg
	x0, y0 := r0*math.Sin(a0), r0*math.Cos(a0)
	x1, y1 := r1*math.Sin(a1), r1*math.Cos(a1)
	// intersect the ray at angle a with segment (x0,y0)-(x1,y1)
	ux, uy := math.Sin(a), math.Cos(a)
	ex, ey := x1-x0, y1-y0
	den := ux*ey - uy*ex
	if den == 0 {
		return d <= r0
	}
	lim := (x0*ey - y0*ex) / den
	return d <= lim
}

// Words is every word of the world's captions, questions and answers.
func Words() []string {
	w := []string{"a", "an", "above", "below", "left", "right", "of", "and", "how", "many", "shapes", "are", "there",
		"what", "color", "is", "the", "size", "shape", "object", "yes", "no", "picture"}
	for _, l := range [][]string{Colors, Shapes, Sizes, Counts} {
		w = append(w, l...)
	}
	return w
}

// Negatives returns n captions that differ from the scene's caption in
// exactly one attribute (one object's size, colour or shape, or, for two
// objects, their order), drawn deterministically from r's seed.
func (s *Scene) Negatives(n int, seed uint64) []string {
	r := rand.New(rand.NewPCG(s.Seed, seed))
	truth := s.Caption()
	seen := map[string]bool{truth: true}
	var out []string
	for tries := 0; len(out) < n && tries < 200*n; tries++ {
		alt := &Scene{Seed: s.Seed, Layout: s.Layout, Objects: append([]Object(nil), s.Objects...)}
		i := r.IntN(len(alt.Objects))
		switch k := r.IntN(4); {
		case k == 0:
			alt.Objects[i].Size = Sizes[1-index(Sizes, alt.Objects[i].Size)]
		case k == 1:
			alt.Objects[i].Color = Colors[r.IntN(len(Colors))]
		case k == 2:
			alt.Objects[i].Shape = Shapes[r.IntN(len(Shapes))]
		default:
			if len(alt.Objects) < 2 {
				continue
			}
			j := (i + 1 + r.IntN(len(alt.Objects)-1)) % len(alt.Objects)
			alt.Objects[i], alt.Objects[j] = alt.Objects[j], alt.Objects[i]
		}
		c := alt.Caption()
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

func index(list []string, w string) int {
	for i, x := range list {
		if x == w {
			return i
		}
	}
	return -1
}

// PatchLabels returns, for every patch of a grid of patch×patch pixel
// cells (row-major), the shape and size of the object covering most of
// the cell's pixels, as 1 + the index in Shapes and Sizes, or 0 for
// background (an object must cover at least a quarter of the cell). These
// are dense targets for auxiliary training of a vision encoder.
func (s *Scene) PatchLabels(patch int) (shape, size []int) {
	g := Size / patch
	shape, size = make([]int, g*g), make([]int, g*g)
	for gy := 0; gy < g; gy++ {
		for gx := 0; gx < g; gx++ {
			best, bestN := -1, patch*patch/4
			for k, o := range s.Objects {
				n := 0
				for y := gy * patch; y < (gy+1)*patch; y++ {
					for x := gx * patch; x < (gx+1)*patch; x++ {
						if inside(o, float64(x)+0.5-o.X, float64(y)+0.5-o.Y) {
							n++
						}
					}
				}
				if n >= bestN {
					best, bestN = k, n
				}
			}
			if best >= 0 {
				o := s.Objects[best]
				shape[gy*g+gx] = 1 + index(Shapes, o.Shape)
				size[gy*g+gx] = 1 + index(Sizes, o.Size)
			}
		}
	}
	return shape, size
}
