// The loops generate() dispatches to besides the sampled one.
#pragma once

#include <span>

#include "gptneo/generate.h"

namespace gptneo {

// Beam search (beam_search.cpp). The result's choices are the best
// num_return_sequences hypotheses; on_event gets one final event per choice.
GenerateResult beam_search_generate(Model& model, const Tokenizer* tokenizer, std::span<const TokenId> prompt,
                                    const GenerateOptions& options, const StreamCallback& on_event);

// Speculative decoding with a draft model (speculative.cpp): one sequence.
GenerateResult speculative_generate(Model& target, Model& draft, const Tokenizer* tokenizer,
                                    std::span<const TokenId> prompt, const GenerateOptions& options,
                                    const StreamCallback& on_event);

}  // namespace gptneo
