package blip

import (
	"encoding/json"
	"fmt"

	"github.com/glimpse-vlm/glimpse/text/bert"
	"github.com/glimpse-vlm/glimpse/vision/vit"
)

// Config is a typed BlipConfig (config.json of every BLIP architecture),
// with HF 4.40's class defaults applied to absent keys.
type Config struct {
	Architectures []string
	Text          bert.Config // text_config (BlipTextConfig)
	Vision        vit.Config  // vision_config (BlipVisionConfig)
	// ProjectionDim is projection_dim (512 by default; BlipModel's CLIP-like
	// projections, unused by the three served architectures).
	ProjectionDim int
	// ImageTextHiddenSize is image_text_hidden_size (256 by default): the
	// width of BlipForImageTextRetrieval's vision_proj and text_proj.
	ImageTextHiddenSize int
	// LogitScaleInit is logit_scale_init_value (2.6592; not used by the
	// served architectures).
	LogitScaleInit float64
}

type hfConfig struct {
	Architectures       []string        `json:"architectures"`
	ModelType           string          `json:"model_type"`
	TextConfig          json.RawMessage `json:"text_config"`
	VisionConfig        json.RawMessage `json:"vision_config"`
	ProjectionDim       *int            `json:"projection_dim"`
	ImageTextHiddenSize *int            `json:"image_text_hidden_size"`
	LogitScaleInit      *float64        `json:"logit_scale_init_value"`
}

// ParseConfig reads a BLIP config.json. As HF's BlipConfig does, it sets
// text_config.encoder_hidden_size to vision_config.hidden_size.
func ParseConfig(raw []byte) (Config, error) {
	c := Config{ProjectionDim: 512, ImageTextHiddenSize: 256, LogitScaleInit: 2.6592}
	var h hfConfig
	if err := json.Unmarshal(raw, &h); err != nil {
		return c, fmt.Errorf("blip: config.json: %w", err)
	}
	if h.ModelType != "" && h.ModelType != "blip" {
		return c, fmt.Errorf("blip: config.json model_type %q is not \"blip\"", h.ModelType)
	}
	c.Architectures = h.Architectures
	var err error
	if c.Text, err = bert.ParseConfig(nullToEmpty(h.TextConfig)); err != nil {
		return c, fmt.Errorf("blip: %w", err)
	}
	if c.Vision, err = vit.ParseConfig(vit.BLIP, nullToEmpty(h.VisionConfig)); err != nil {
		return c, fmt.Errorf("blip: %w", err)
	}
	c.Text.EncoderHiddenSize = c.Vision.HiddenSize
	if h.ProjectionDim != nil {
		c.ProjectionDim = *h.ProjectionDim
	}
	if h.ImageTextHiddenSize != nil {
		c.ImageTextHiddenSize = *h.ImageTextHiddenSize
	}
	if h.LogitScaleInit != nil {
		c.LogitScaleInit = *h.LogitScaleInit
	}
	if c.ImageTextHiddenSize <= 0 || c.ImageTextHiddenSize > 1<<20 {
		return c, fmt.Errorf("blip: config.json image_text_hidden_size = %d, must be positive", c.ImageTextHiddenSize)
	}
	return c, nil
}

func nullToEmpty(raw json.RawMessage) []byte {
	if string(raw) == "null" {
		return nil
	}
	return raw
}
