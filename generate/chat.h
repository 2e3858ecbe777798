// generate/chat: chat prompt formats, recognised from a model's tokenizer.chat_template.
//
// GGUF files carry the Jinja template their model was trained with. ragd does not run
// Jinja; it recognises the four families that cover the supported models by their marker
// tokens and formats messages the same way. The text returned has no BOS: tokenize it
// with add_special (which adds BOS when the model wants it) and parse_special.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ragd {

enum class ChatFormat {
    ChatML,   // Qwen: <|im_start|>role\n...<|im_end|>
    Llama3,   // <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>
    Mistral,  // [INST] ... [/INST] answer</s>, system text joined to the first user turn
    Gemma,    // <start_of_turn>user\n...<end_of_turn>, assistant is "model", no system role
    Plain,    // no template: "System: ...\n\nUser: ...\nAssistant:"
};

ChatFormat detect_chat_format(std::string_view chat_template);
const char* chat_format_name(ChatFormat f);

struct ChatMessage {
    std::string role;  // "system", "user", "assistant"
    std::string content;
};

// The prompt for messages, ending with the opening of the assistant's turn when
// add_generation_prompt is set. Throws ragd::Error(InvalidArgument) on an unknown role.
std::string apply_chat_template(ChatFormat f, const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt = true);

// Strings that end an assistant turn in this format (besides the EOS token), for use as
// stop strings when the model writes them as text.
std::vector<std::string> chat_stop_strings(ChatFormat f);

}  // namespace ragd
