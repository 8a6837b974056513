package vision

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// Processor is an HF image processor (transformers 4.40) configured from preprocessor_config.json.
// Its exported fields are the effective settings after applying the class defaults; they may be
// changed before use.
type Processor struct {
	// Class is the HF class: "BlipImageProcessor", "ViTImageProcessor" or "CLIPImageProcessor".
	Class string
	// Width and Height are the output size (after resize and centre crop).
	Width, Height int

	// DoResize enables the resize. With ShortestEdge > 0 the shorter side becomes ShortestEdge
	// and the other int(ShortestEdge·long/short) (CLIP); otherwise the image is resized to
	// exactly ResizeHeight×ResizeWidth, aspect ratio ignored (BLIP, ViT).
	DoResize                  bool
	ShortestEdge              int
	ResizeHeight, ResizeWidth int
	// Resample is the PIL filter number: 0 nearest, 1 lanczos, 2 bilinear, 3 bicubic, 4 box,
	// 5 hamming.
	Resample int

	// DoCenterCrop crops CropHeight×CropWidth from the centre (top=(h−ch)//2, left=(w−cw)//2),
	// zero-padding first if the image is smaller, as transformers.image_transforms.center_crop.
	DoCenterCrop          bool
	CropHeight, CropWidth int

	// DoRescale multiplies by RescaleFactor (in float64, then cast to float32, as HF does).
	DoRescale     bool
	RescaleFactor float64
	// DoNormalize computes (x − ImageMean[c]) / ImageStd[c] in float32.
	DoNormalize bool
	ImageMean   [3]float32
	ImageStd    [3]float32
	// DoConvertRGB is recorded for completeness: Decode and ToRGB always produce RGB, which is
	// what every supported class feeds its model.
	DoConvertRGB bool
}

// Normalisation constants of transformers.image_utils.
var (
	OpenAICLIPMean       = [3]float32{0.48145466, 0.4578275, 0.40821073}
	OpenAICLIPStd        = [3]float32{0.26862954, 0.26130258, 0.27577711}
	ImageNetStandardMean = [3]float32{0.5, 0.5, 0.5}
	ImageNetStandardStd  = [3]float32{0.5, 0.5, 0.5}
)

// ErrBadProcessorConfig is wrapped by every error NewProcessor and LoadProcessor return for an
// invalid or unsupported preprocessor_config.json.
var ErrBadProcessorConfig = errors.New("invalid image processor config")

// classDefaults returns the __init__ defaults of an HF image processor class.
func classDefaults(class string) (*Processor, bool) {
	switch class {
	case "BlipImageProcessor":
		return &Processor{Class: class, DoResize: true, ResizeHeight: 384, ResizeWidth: 384,
			Resample: ResampleBicubic, DoRescale: true, RescaleFactor: 1.0 / 255, DoNormalize: true,
			ImageMean: OpenAICLIPMean, ImageStd: OpenAICLIPStd, DoConvertRGB: true}, true
	case "ViTImageProcessor":
		return &Processor{Class: class, DoResize: true, ResizeHeight: 224, ResizeWidth: 224,
			Resample: ResampleBilinear, DoRescale: true, RescaleFactor: 1.0 / 255, DoNormalize: true,
			ImageMean: ImageNetStandardMean, ImageStd: ImageNetStandardStd}, true
	case "CLIPImageProcessor":
		return &Processor{Class: class, DoResize: true, ShortestEdge: 224,
			Resample: ResampleBicubic, DoCenterCrop: true, CropHeight: 224, CropWidth: 224,
			DoRescale: true, RescaleFactor: 1.0 / 255, DoNormalize: true,
			ImageMean: OpenAICLIPMean, ImageStd: OpenAICLIPStd, DoConvertRGB: true}, true
	}
	return nil, false
}

// processorClass finds the image processor class from image_processor_type, else
// feature_extractor_type (legacy "…FeatureExtractor" names map to "…ImageProcessor"), else
// processor_class ("BlipProcessor" → "BlipImageProcessor").
func processorClass(raw map[string]json.RawMessage) (string, error) {
	for _, key := range []string{"image_processor_type", "feature_extractor_type", "processor_class"} {
		v, ok := raw[key]
		if !ok {
			continue
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", fmt.Errorf("%w: %q must be a string, got %s", ErrBadProcessorConfig, key, v)
		}
		s = strings.TrimSuffix(s, "Fast")
		switch {
		case strings.HasSuffix(s, "FeatureExtractor"):
			s = strings.TrimSuffix(s, "FeatureExtractor") + "ImageProcessor"
		case strings.HasSuffix(s, "ImageProcessor"):
		case strings.HasSuffix(s, "Processor"):
			s = strings.TrimSuffix(s, "Processor") + "ImageProcessor"
		}
		if _, ok := classDefaults(s); !ok {
			return "", fmt.Errorf("%w: %s = %q: unsupported image processor class %q (supported: BlipImageProcessor, ViTImageProcessor, CLIPImageProcessor)",
				ErrBadProcessorConfig, key, s, s)
		}
		return s, nil
	}
	return "", fmt.Errorf("%w: none of image_processor_type, feature_extractor_type, processor_class is set, so the processor class (and its defaults) is unknown",
		ErrBadProcessorConfig)
}

// LoadProcessor reads dir/preprocessor_config.json.
func LoadProcessor(dir string) (*Processor, error) {
	path := filepath.Join(dir, "preprocessor_config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("vision: reading the image processor config: %w", err)
	}
	p, err := NewProcessor(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// NewProcessor builds a Processor from the bytes of a preprocessor_config.json. Keys it does not
// know are ignored (4.40 writes a stray "_valid_processor_keys" list); absent keys take the class
// defaults. Values of the wrong type or out of range are errors that name the key.
func NewProcessor(cfgJSON []byte) (*Processor, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(cfgJSON))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object: %v", ErrBadProcessorConfig, err)
	}
	class, err := processorClass(raw)
	if err != nil {
		return nil, err
	}
	p, _ := classDefaults(class)
	bad := func(key string, v json.RawMessage, want string) error {
		return fmt.Errorf("%w: %q = %s: want %s", ErrBadProcessorConfig, key, v, want)
	}
	getBool := func(key string, dst *bool) error {
		if v, ok := raw[key]; ok && string(v) != "null" {
			if err := json.Unmarshal(v, dst); err != nil {
				return bad(key, v, "true or false")
			}
		}
		return nil
	}
	for key, dst := range map[string]*bool{"do_resize": &p.DoResize, "do_center_crop": &p.DoCenterCrop,
		"do_rescale": &p.DoRescale, "do_normalize": &p.DoNormalize, "do_convert_rgb": &p.DoConvertRGB} {
		if err := getBool(key, dst); err != nil {
			return nil, err
		}
	}
	if v, ok := raw["resample"]; ok && string(v) != "null" {
		var r float64
		if err := json.Unmarshal(v, &r); err != nil || r != math.Trunc(r) || r < 0 || r > 5 {
			return nil, bad("resample", v, "a PIL filter number 0–5 (0 nearest, 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming)")
		}
		p.Resample = int(r)
	}
	if v, ok := raw["rescale_factor"]; ok && string(v) != "null" {
		if err := json.Unmarshal(v, &p.RescaleFactor); err != nil || p.RescaleFactor <= 0 || math.IsInf(p.RescaleFactor, 0) {
			return nil, bad("rescale_factor", v, "a positive number such as 0.00392156862745098 (1/255)")
		}
	}
	for key, dst := range map[string]*[3]float32{"image_mean": &p.ImageMean, "image_std": &p.ImageStd} {
		v, ok := raw[key]
		if !ok || string(v) == "null" {
			continue
		}
		var list []float64
		var one float64
		if err := json.Unmarshal(v, &list); err != nil {
			if err := json.Unmarshal(v, &one); err != nil {
				return nil, bad(key, v, "a list of 3 numbers (one per RGB channel) or one number")
			}
			list = []float64{one, one, one}
		}
		if len(list) != 3 {
			return nil, bad(key, v, "3 values, one per RGB channel")
		}
		for i, x := range list {
			if key == "image_std" && x == 0 {
				return nil, bad(key, v, "non-zero standard deviations")
			}
			dst[i] = float32(x)
		}
	}

	// size: dict {height,width} | {shortest_edge} | int | [h, w], read as HF's get_size_dict
	// does (default_to_square for BLIP/ViT, not for CLIP).
	if v, ok := raw["size"]; ok && string(v) != "null" {
		h, w, short, err := parseSize(v, class != "CLIPImageProcessor")
		if err != nil {
			return nil, bad("size", v, err.Error())
		}
		if class != "CLIPImageProcessor" && short > 0 {
			return nil, bad("size", v, class+" needs {\"height\": H, \"width\": W}; it does not accept shortest_edge")
		}
		p.ShortestEdge, p.ResizeHeight, p.ResizeWidth = short, h, w
	}
	if class == "CLIPImageProcessor" {
		if v, ok := raw["use_square_size"]; ok && string(v) == "true" && p.ShortestEdge > 0 {
			p.ResizeHeight, p.ResizeWidth, p.ShortestEdge = p.ShortestEdge, p.ShortestEdge, 0
		}
		if v, ok := raw["crop_size"]; ok && string(v) != "null" {
			h, w, short, err := parseSize(v, true)
			if err != nil || short > 0 {
				return nil, bad("crop_size", v, "{\"height\": H, \"width\": W} or one integer")
			}
			p.CropHeight, p.CropWidth = h, w
		}
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// parseSize reads an HF size value. It returns either (h, w, 0) or (0, 0, shortest).
func parseSize(v json.RawMessage, square bool) (h, w, short int, err error) {
	const maxSide = 16384
	check := func(xs ...float64) error {
		for _, x := range xs {
			if x != math.Trunc(x) || x < 1 || x > maxSide {
				return fmt.Errorf("whole numbers from 1 to %d", maxSide)
			}
		}
		return nil
	}
	var n float64
	if json.Unmarshal(v, &n) == nil {
		if err := check(n); err != nil {
			return 0, 0, 0, err
		}
		if square {
			return int(n), int(n), 0, nil
		}
		return 0, 0, int(n), nil
	}
	var list []float64
	if json.Unmarshal(v, &list) == nil {
		if len(list) != 2 {
			return 0, 0, 0, errors.New("a [height, width] pair")
		}
		if err := check(list...); err != nil {
			return 0, 0, 0, err
		}
		return int(list[0]), int(list[1]), 0, nil
	}
	var d map[string]*float64
	if err := json.Unmarshal(v, &d); err != nil {
		return 0, 0, 0, errors.New(`{"height": H, "width": W}, {"shortest_edge": S} or an integer`)
	}
	if s := d["shortest_edge"]; s != nil {
		if err := check(*s); err != nil {
			return 0, 0, 0, err
		}
		return 0, 0, int(*s), nil
	}
	if d["height"] != nil && d["width"] != nil {
		if err := check(*d["height"], *d["width"]); err != nil {
			return 0, 0, 0, err
		}
		return int(*d["height"]), int(*d["width"]), 0, nil
	}
	return 0, 0, 0, errors.New(`{"height": H, "width": W} or {"shortest_edge": S} (other forms such as longest_edge are not supported)`)
}

func (p *Processor) validate() error {
	if p.DoCenterCrop && (p.CropHeight <= 0 || p.CropWidth <= 0) {
		return fmt.Errorf("%w: centre crop enabled with crop size %d×%d", ErrBadProcessorConfig, p.CropHeight, p.CropWidth)
	}
	if p.DoResize && p.ShortestEdge <= 0 && (p.ResizeHeight <= 0 || p.ResizeWidth <= 0) {
		return fmt.Errorf("%w: resize enabled with size %d×%d", ErrBadProcessorConfig, p.ResizeHeight, p.ResizeWidth)
	}
	if _, ok := pilFilters[p.Resample]; !ok && p.Resample != ResampleNearest {
		return fmt.Errorf("%w: resample %d is not a PIL filter (0–5)", ErrBadProcessorConfig, p.Resample)
	}
	switch {
	case p.DoCenterCrop:
		p.Width, p.Height = p.CropWidth, p.CropHeight
	case p.DoResize && p.ShortestEdge == 0:
		p.Width, p.Height = p.ResizeWidth, p.ResizeHeight
	default:
		p.Width, p.Height = 0, 0 // depends on the input image
	}
	return nil
}

// OutputSize returns the (h, w) of the pixel tensor. It is (0, 0) when the size depends on the
// input image (no centre crop and either no resize or a shortest-edge resize).
func (p *Processor) OutputSize() (h, w int) { return p.Height, p.Width }

// resizeTarget returns the size HF resizes an h×w image to.
func (p *Processor) resizeTarget(h, w int) (int, int) {
	if p.ShortestEdge <= 0 {
		return p.ResizeHeight, p.ResizeWidth
	}
	// transformers.image_transforms.get_resize_output_image_size, default_to_square=False.
	short, long := h, w
	if w <= h {
		short, long = w, h
	}
	s := p.ShortestEdge
	newLong := int(float64(s*long) / float64(short))
	if newLong < 1 {
		newLong = 1
	}
	if w <= h {
		return newLong, s
	}
	return s, newLong
}

// maxResizeSide caps the resize target of a shortest-edge resize without a centre crop (HF has
// no cap: an image 1 pixel tall would become 224 × 224·width). Only such configurations, which
// the fixed-size vision encoders served here cannot use anyway, are affected.
const maxResizeSide = 16384

// Resize returns the uint8 image HF normalises: resized with PIL's filter (if DoResize) and
// centre-cropped with zero padding (if DoCenterCrop). With a crop only the cropped window of the
// resize is computed (bit-identical, and bounded however extreme the aspect ratio). The input is
// not modified. Safe for concurrent use.
func (p *Processor) Resize(img *RGB) *RGB {
	h, w := img.H, img.W
	if p.DoResize {
		h, w = p.resizeTarget(img.H, img.W)
	}
	if !p.DoCenterCrop {
		if !p.DoResize {
			return cropRGB(img, image.Rect(0, 0, img.W, img.H))
		}
		h, w = min(h, maxResizeSide), min(w, maxResizeSide)
		r, err := ResizePIL(img, w, h, p.Resample)
		if err != nil { // only for an empty input image
			return NewRGB(max(w, 0), max(h, 0))
		}
		return r
	}
	oh, ow, sy0, sx0 := cropGeometry(h, w, p.CropHeight, p.CropWidth)
	win := image.Rect(sx0, sy0, sx0+ow, sy0+oh).Intersect(image.Rect(0, 0, w, h))
	var part *RGB
	if p.DoResize {
		var err error
		if part, err = ResizePILRegion(img, w, h, p.Resample, win); err != nil {
			part = NewRGB(0, 0)
		}
	} else if !win.Empty() {
		part = cropRGB(img, win)
	}
	out := NewRGB(ow, oh) // zeros: HF pads with 0 before cropping
	if part != nil {
		dx, dy := win.Min.X-sx0, win.Min.Y-sy0
		for y := 0; y < part.H; y++ {
			copy(out.Pix[((dy+y)*ow+dx)*3:], part.Pix[y*part.W*3:(y+1)*part.W*3])
		}
	}
	return out
}

// cropGeometry is transformers.image_transforms.center_crop's arithmetic for an h×w image and an
// ch×cw crop: the output is oh×ow and out(x, y) = in(x+sx0, y+sy0), zero where that is outside.
func cropGeometry(h, w, ch, cw int) (oh, ow, sy0, sx0 int) {
	floorDiv := func(a, b int) int {
		q := a / b
		if (a%b != 0) && ((a < 0) != (b < 0)) {
			q--
		}
		return q
	}
	top, left := floorDiv(h-ch, 2), floorDiv(w-cw, 2)
	// HF pads to max(ch,h)×max(cw,w) with the image at ceil((new−old)/2), shifts the crop
	// window by the same amount and clips it to the padded image.
	nh, nw := max(ch, h), max(cw, w)
	padT, padL := (nh-h+1)/2, (nw-w+1)/2
	top += padT
	left += padL
	bottom, right := min(top+ch, nh), min(left+cw, nw)
	top, left = max(top, 0), max(left, 0)
	return max(bottom-top, 0), max(right-left, 0), top - padT, left - padL
}

// centerCrop is transformers.image_transforms.center_crop on an HWC uint8 image.
func centerCrop(img *RGB, ch, cw int) *RGB {
	oh, ow, sy0, sx0 := cropGeometry(img.H, img.W, ch, cw)
	out := NewRGB(ow, oh)
	for y := 0; y < oh; y++ {
		sy := y + sy0
		if sy < 0 || sy >= img.H {
			continue
		}
		for x := 0; x < ow; x++ {
			sx := x + sx0
			if sx < 0 || sx >= img.W {
				continue
			}
			copy(out.Pix[(y*ow+x)*3:(y*ow+x)*3+3], img.Pix[(sy*img.W+sx)*3:])
		}
	}
	return out
}

// Normalize turns a uint8 RGB image into CHW float32 values as HF does after resizing:
// x = float32(float64(u8)·RescaleFactor) if DoRescale, then (x − mean)/std in float32 if
// DoNormalize.
func (p *Processor) Normalize(img *RGB) []float32 {
	n := img.W * img.H
	out := make([]float32, 3*n)
	var lut [3][256]float32
	for c := 0; c < 3; c++ {
		for v := 0; v < 256; v++ {
			x := float32(v)
			if p.DoRescale {
				x = float32(float64(v) * p.RescaleFactor)
			}
			if p.DoNormalize {
				x = (x - p.ImageMean[c]) / p.ImageStd[c]
			}
			lut[c][v] = x
		}
	}
	for i := 0; i < n; i++ {
		out[i] = lut[0][img.Pix[3*i]]
		out[n+i] = lut[1][img.Pix[3*i+1]]
		out[2*n+i] = lut[2][img.Pix[3*i+2]]
	}
	return out
}

// Preprocess returns the model's pixel_values for one image: CHW float32, 3×H×W with (H, W) the
// size of Resize(img) (equal to OutputSize() when that is fixed).
func (p *Processor) Preprocess(img *RGB) []float32 {
	return p.Normalize(p.Resize(img))
}
