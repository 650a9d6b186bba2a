package synth

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/crucible-ml/crucible/backend"
	"github.com/crucible-ml/crucible/record"
)

// Pair rules.
const (
	PairsByReward      = "reward"      // argmax vs argmin of `reward`
	PairsByCorrectness = "correctness" // an is_correct response vs an incorrect one
	PairsByJudge       = "judge"       // the pairwise judge's `preferred` response
)

// PairsOptions configure Pairs.
type PairsOptions struct {
	Common
	Input, Output string
	// By is PairsByReward (default), PairsByCorrectness or PairsByJudge.
	By string
	// Margin is the least chosen_reward - rejected_reward a pair needs
	// (reward rule; default 0: any strict gap).
	Margin float64
	// MinChosen, when set, is the least reward a chosen response needs.
	MinChosen *float64
	// ResponseField names the response (default "generation").
	ResponseField string
}

// perResponse are the fields that describe one response rather than the
// prompt; a pair row does not inherit them.
var perResponse = []string{"generation", "sample", "finish_reason", "num_generated_tokens", "reward",
	"reward_attributes", "predicted_answer", "is_correct", "judgement", "judge_correct", "judged_by",
	"judge_note", "error", "response_a", "response_b", "judgement_ab", "judgement_ba", "preferred", "sample_a", "sample_b",
	"follow_instruction_list", "follow_all_instructions", "unverified_instructions"}

// Pairs builds preference pairs from the k responses of each prompt (rows
// sharing an id, one per sample) and writes one row per prompt that yields a
// pair: the prompt's fields, then prompt (its prompt, problem, question or
// messages), chosen, rejected, chosen_reward, rejected_reward,
// chosen_sample, rejected_sample and pair_rule. By reward: the best and the
// worst response by `reward`, kept when the gap reaches Margin (and the
// chosen one reaches MinChosen). By correctness (is_correct, else the LLM
// judge's judge_correct): the best-rewarded correct response and the
// worst-rewarded incorrect one (lowest samples when there
// are no rewards); rewards default to 1 and 0. By judge: rows judged by
// Judge in pairwise mode. Explicit pairs (rows with response_a, response_b,
// preferred) give a pair each; ties and inconsistent verdicts give none.
// Pairs that Judge made from k responses per prompt (rows with sample_a and
// sample_b) give one pair per prompt: the response with the most wins
// against the one it beat that has the fewest (their win counts are the
// rewards, pair_wins says how many verdicts agreed). Rows with an `error` are ignored. The manifest
// counts prompts without a pair by reason.
func Pairs(ctx context.Context, o PairsOptions) (*Report, error) {
	start := time.Now()
	if o.Input == "" || o.Output == "" {
		return nil, fmt.Errorf("pairs: input and output are required")
	}
	if o.By == "" {
		o.By = PairsByReward
	}
	if o.ResponseField == "" {
		o.ResponseField = "generation"
	}
	switch o.By {
	case PairsByReward, PairsByCorrectness, PairsByJudge:
	default:
		return nil, fmt.Errorf("pairs: rule %q: want reward, correctness or judge", o.By)
	}
	rows, err := readAll(o.Input)
	if err != nil {
		return nil, err
	}
	sortRows(rows)
	var groups [][]*record.Row
	for _, r := range rows {
		if !o.Shard.Contains(r.ID()) {
			continue
		}
		if len(groups) == 0 || r.ID() != groups[len(groups)-1][0].ID() {
			if o.Limit > 0 && len(groups) >= o.Limit {
				break
			}
			groups = append(groups, nil)
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], r)
	}
	rep := newReport(o.Output)
	err = writeRows(ctx, rep, "pairs", o.Output, func(emit func(*record.Row) error) error {
		for _, g := range groups {
			if o.By == PairsByJudge && g[0].Has("sample_a") {
				out, reason := o.judgedGroup(g)
				if reason != "" {
					rep.count("no_pair_" + reason)
					continue
				}
				if err := emit(out); err != nil {
					return err
				}
				continue
			}
			if o.By == PairsByJudge {
				for _, r := range g {
					out, reason := o.judgedPair(r)
					if reason != "" {
						rep.count("no_pair_" + reason)
						continue
					}
					if err := emit(out); err != nil {
						return err
					}
				}
				continue
			}
			out, reason := o.pick(g)
			if reason != "" {
				rep.count("no_pair_" + reason)
				continue
			}
			if err := emit(out); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	rep.Counts["prompts"] = len(groups)
	return rep, o.finish(rep, start, rep.lastStage())
}

type response struct {
	row       *record.Row
	text      string
	sample    int64
	reward    float64
	hasReward bool
}

// pick chooses a pair from one prompt's responses; reason says why there is
// none.
func (o *PairsOptions) pick(g []*record.Row) (*record.Row, string) {
	var rs []response
	for _, r := range g {
		if r.Has("error") {
			continue
		}
		t, ok := r.Text(o.ResponseField)
		if !ok {
			if t, ok = lastAssistant(r); !ok {
				continue
			}
		}
		s, _ := r.Int("sample")
		x, hasR := parseFloat(r, "reward")
		rs = append(rs, response{r, t, s, x, hasR})
	}
	if len(rs) < 2 {
		return nil, "too_few_responses"
	}
	var chosen, rejected *response
	switch o.By {
	case PairsByReward:
		for i := range rs {
			r := &rs[i]
			if !r.hasReward {
				return nil, "missing_reward"
			}
			if chosen == nil || r.reward > chosen.reward {
				chosen = r
			}
			if rejected == nil || r.reward < rejected.reward {
				rejected = r
			}
		}
		gap := chosen.reward - rejected.reward
		if gap <= 0 || gap < o.Margin {
			return nil, "below_margin"
		}
		if o.MinChosen != nil && chosen.reward < *o.MinChosen {
			return nil, "chosen_below_minimum"
		}
	case PairsByCorrectness:
		for i := range rs {
			r := &rs[i]
			ok, has := r.row.Bool("is_correct")
			if !has {
				if ok, has = r.row.Bool("judge_correct"); !has {
					continue
				}
			}
			if !r.hasReward {
				r.reward = map[bool]float64{true: 1, false: 0}[ok]
			}
			switch {
			case ok && (chosen == nil || r.reward > chosen.reward):
				chosen = r
			case !ok && (rejected == nil || r.reward < rejected.reward):
				rejected = r
			}
		}
		if chosen == nil || rejected == nil {
			return nil, "no_correct_incorrect_split"
		}
		if gap := chosen.reward - rejected.reward; gap < o.Margin {
			return nil, "below_margin"
		}
	}
	return o.pairRow(chosen.row, chosen.text, rejected.text, chosen.reward, rejected.reward, chosen.sample, rejected.sample), ""
}

func (o *PairsOptions) pairRow(base *record.Row, chosen, rejected string, cr, rr float64, cs, rs int64) *record.Row {
	out := inherit(base, base.ID(), perResponse...)
	switch {
	case base.Has("prompt"):
		// kept in place
	case base.Has("messages"):
		var msgs []backend.Message
		if base.Decode("messages", &msgs) == nil && len(msgs) > 0 && msgs[len(msgs)-1].Role == "assistant" && !base.Has(o.ResponseField) {
			out.Set("prompt", msgs[:len(msgs)-1])
		} else {
			out.SetRaw("prompt", base.Raw("messages"))
		}
	case base.Has("problem"):
		p, _ := base.Text("problem")
		out.Set("prompt", p)
	case base.Has("question"):
		p, _ := base.Text("question")
		out.Set("prompt", p)
	}
	out.Set("chosen", chosen)
	out.Set("rejected", rejected)
	out.Set("chosen_reward", finite(cr))
	out.Set("rejected_reward", finite(rr))
	if cs >= 0 {
		out.Set("chosen_sample", cs)
		out.Set("rejected_sample", rs)
	}
	out.Set("pair_rule", o.By)
	return out
}

// lastAssistant returns the content of a row's messages when they end with
// an assistant turn (a scored conversation without a separate response).
func lastAssistant(r *record.Row) (string, bool) {
	var msgs []backend.Message
	if r.Decode("messages", &msgs) != nil || len(msgs) == 0 || msgs[len(msgs)-1].Role != "assistant" {
		return "", false
	}
	return msgs[len(msgs)-1].Content, true
}

func finite(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return x
}

// judgedPair turns one pairwise-judged row into a pair.
func (o *PairsOptions) judgedPair(r *record.Row) (*record.Row, string) {
	if r.Has("error") {
		return nil, "request_error"
	}
	pref, ok := r.String("preferred")
	if !ok {
		return nil, "not_judged"
	}
	a, _ := r.Text("response_a")
	b, _ := r.Text("response_b")
	switch pref {
	case "a":
		return o.keyed(r, o.pairRow(r, a, b, 1, 0, -1, -1)), ""
	case "b":
		return o.keyed(r, o.pairRow(r, b, a, 1, 0, -1, -1)), ""
	case "tie":
		return nil, "tie"
	}
	return nil, "inconsistent"
}

// keyed keeps the judged row's sample, so that pairs of one prompt stay
// distinct keys.
func (o *PairsOptions) keyed(src, out *record.Row) *record.Row {
	if s, ok := src.Int("sample"); ok {
		out.Set("sample", s)
	}
	return out
}

// judgedGroup picks one pair from the pairwise verdicts on one prompt's
// responses: chosen is the response with the most wins (ties: the lower
// sample), rejected the response it beat that has the fewest wins.
func (o *PairsOptions) judgedGroup(g []*record.Row) (*record.Row, string) {
	wins := map[int64]int{}
	text := map[int64]string{}
	beat := map[int64][]int64{}
	consistent := 0
	for _, r := range g {
		if r.Has("error") {
			continue
		}
		sa, _ := r.Int("sample_a")
		sb, _ := r.Int("sample_b")
		text[sa], _ = r.Text("response_a")
		text[sb], _ = r.Text("response_b")
		wins[sa] += 0
		wins[sb] += 0
		switch pref, _ := r.String("preferred"); pref {
		case "a":
			wins[sa]++
			beat[sa] = append(beat[sa], sb)
			consistent++
		case "b":
			wins[sb]++
			beat[sb] = append(beat[sb], sa)
			consistent++
		}
	}
	if consistent == 0 {
		return nil, "no_consistent_verdict"
	}
	chosen := int64(-1)
	for s, w := range wins {
		if len(beat[s]) > 0 && (chosen < 0 || w > wins[chosen] || w == wins[chosen] && s < chosen) {
			chosen = s
		}
	}
	rejected := int64(-1)
	for _, s := range beat[chosen] {
		if rejected < 0 || wins[s] < wins[rejected] || wins[s] == wins[rejected] && s < rejected {
			rejected = s
		}
	}
	out := o.pairRow(g[0], text[chosen], text[rejected], float64(wins[chosen]), float64(wins[rejected]), chosen, rejected)
	out.Set("pair_wins", fmt.Sprintf("%d-%d of %d verdicts", wins[chosen], wins[rejected], consistent))
	return out, ""
}
