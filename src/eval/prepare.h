// The text transformations the harness applies to the published data sets
// before scoring, reproduced for `gptneo eval --prepare`.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace gptneo::eval {

// WikiText raw files (wiki.test.raw) cut into pages the way the harness's
// data set (EleutherAI/wikitext_document_level) cuts them: a new page starts
// at every top-level heading line " = Title = ".
std::vector<std::string> wikitext_pages(std::string_view raw);
// The harness's wikitext_detokenizer: undoes WikiText's tokenization
// (" @-@ " -> "-", spaces before punctuation, inside brackets and quotes...).
std::string wikitext_detokenize(std::string_view page);
// The harness's HellaSwag preprocess(): strip, " [title]" -> ". ", drop
// "[...]" markers (within a line), "  " -> " ".
std::string hellaswag_preprocess(std::string_view text);

}  // namespace gptneo::eval
