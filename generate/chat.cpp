#include "generate/chat.h"

#include "config/config.h"

namespace ragd {

ChatFormat detect_chat_format(std::string_view t) {
    auto has = [&](std::string_view marker) { return t.find(marker) != std::string_view::npos; };
    if (has("<|im_start|>")) return ChatFormat::ChatML;
    if (has("<|start_header_id|>")) return ChatFormat::Llama3;
    if (has("<start_of_turn>")) return ChatFormat::Gemma;
    if (has("[INST]")) return ChatFormat::Mistral;
    return ChatFormat::Plain;
}

const char* chat_format_name(ChatFormat f) {
    switch (f) {
        case ChatFormat::ChatML:
            return "chatml";
        case ChatFormat::Llama3:
            return "llama3";
        case ChatFormat::Mistral:
            return "mistral";
        case ChatFormat::Gemma:
            return "gemma";
        case ChatFormat::Plain:
            return "plain";
    }
    return "plain";
}

std::string apply_chat_template(ChatFormat f, const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt) {
    for (const auto& m : messages)
        if (m.role != "system" && m.role != "user" && m.role != "assistant")
            throw Error(Error::Code::InvalidArgument,
                        "unknown chat role '" + m.role + "' (system, user, assistant)");
    std::string out;
    // Formats without a system role fold system text into the next user turn.
    std::string pending_system;
    auto take_system = [&](const std::string& content) {
        std::string s = pending_system.empty() ? content : pending_system + "\n\n" + content;
        pending_system.clear();
        return s;
    };
    for (const auto& m : messages) {
        switch (f) {
            case ChatFormat::ChatML:
                out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
                break;
            case ChatFormat::Llama3:
                out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + m.content +
                       "<|eot_id|>";
                break;
            case ChatFormat::Mistral:
                if (m.role == "system")
                    pending_system += (pending_system.empty() ? "" : "\n\n") + m.content;
                else if (m.role == "user")
                    out += "[INST] " + take_system(m.content) + " [/INST]";
                else
                    out += " " + m.content + "</s>";
                break;
            case ChatFormat::Gemma:
                if (m.role == "system")
                    pending_system += (pending_system.empty() ? "" : "\n\n") + m.content;
                else if (m.role == "user")
                    out += "<start_of_turn>user\n" + take_system(m.content) + "<end_of_turn>\n";
                else
                    out += "<start_of_turn>model\n" + m.content + "<end_of_turn>\n";
                break;
            case ChatFormat::Plain:
                if (m.role == "system")
                    out += m.content + "\n\n";
                else if (m.role == "user")
                    out += "User: " + m.content + "\n";
                else
                    out += "Assistant: " + m.content + "\n";
                break;
        }
    }
    if (!pending_system.empty()) {  // a system message with no user turn after it
        if (f == ChatFormat::Mistral)
            out += "[INST] " + take_system("") + " [/INST]";
        else
            out += "<start_of_turn>user\n" + take_system("") + "<end_of_turn>\n";
    }
    if (add_generation_prompt) {
        switch (f) {
            case ChatFormat::ChatML:
                out += "<|im_start|>assistant\n";
                break;
            case ChatFormat::Llama3:
                out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
                break;
            case ChatFormat::Mistral:
                break;  // the model answers right after [/INST]
            case ChatFormat::Gemma:
                out += "<start_of_turn>model\n";
                break;
            case ChatFormat::Plain:
                out += "Assistant:";
                break;
        }
    }
    return out;
}

std::vector<std::string> chat_stop_strings(ChatFormat f) {
    switch (f) {
        case ChatFormat::ChatML:
            return {"<|im_end|>", "<|im_start|>"};
        case ChatFormat::Llama3:
            return {"<|eot_id|>", "<|start_header_id|>"};
        case ChatFormat::Mistral:
            return {"</s>", "[INST]"};
        case ChatFormat::Gemma:
            return {"<end_of_turn>", "<start_of_turn>"};
        case ChatFormat::Plain:
            return {"\nUser:"};
    }
    return {};
}

}  // namespace ragd
