package clip

import (
	"encoding/json"
	"fmt"

	"github.com/glimpse-vlm/glimpse/text/cliptext"
	"github.com/glimpse-vlm/glimpse/vision/vit"
)

// Config is the typed CLIPConfig (transformers 4.40 defaults for absent
// keys, also inside text_config and vision_config).
type Config struct {
	// Text is text_config (CLIPTextConfig).
	Text cliptext.Config
	// Vision is vision_config (CLIPVisionConfig).
	Vision vit.Config
	// ProjectionDim is the joint embedding width (top-level projection_dim,
	// default 512), the output size of text_projection and
	// visual_projection.
	ProjectionDim int
	// LogitScaleInit is logit_scale_init_value (default 2.6592), the value
	// HF gives logit_scale when the checkpoint lacks the tensor.
	LogitScaleInit float64
}

type rawConfig struct {
	ModelType      string          `json:"model_type"`
	Text           json.RawMessage `json:"text_config"`
	Vision         json.RawMessage `json:"vision_config"`
	ProjectionDim  *int            `json:"projection_dim"`
	LogitScaleInit *float64        `json:"logit_scale_init_value"`
}

// ParseConfig reads a CLIPModel config.json.
func ParseConfig(raw []byte) (Config, error) {
	c := Config{ProjectionDim: 512, LogitScaleInit: 2.6592}
	var rc rawConfig
	if err := json.Unmarshal(raw, &rc); err != nil {
		return c, fmt.Errorf("clip: config.json: %w", err)
	}
	if rc.ModelType != "" && rc.ModelType != "clip" {
		return c, fmt.Errorf("clip: config.json model_type is %q, expected \"clip\"", rc.ModelType)
	}
	var err error
	if c.Text, err = cliptext.ParseConfig(rc.Text); err != nil {
		return c, fmt.Errorf("clip: config.json: %w", err)
	}
	if c.Vision, err = vit.ParseConfig(vit.CLIP, rc.Vision); err != nil {
		return c, fmt.Errorf("clip: config.json vision_config: %w", err)
	}
	if rc.ProjectionDim != nil {
		c.ProjectionDim = *rc.ProjectionDim
	}
	if c.ProjectionDim <= 0 || c.ProjectionDim > 1<<20 {
		return c, fmt.Errorf("clip: config.json projection_dim %d must be positive", c.ProjectionDim)
	}
	if rc.LogitScaleInit != nil {
		c.LogitScaleInit = *rc.LogitScaleInit
	}
	return c, nil
}
