"""A question as the clause a refusal names: "The article does not say ___".

"Was the officer fired?" -> "whether the officer was fired"; "What did the mayor say about it?" -> "what the mayor
said about it"; "Where are the migrants being moved to?" -> "where the migrants are being moved to". The question
is turned into an embedded (indirect) question: the auxiliary goes back after the subject, and do-support is
folded into the verb ("did ... say" -> "said", "does ... do" -> "does").

There is no parser here: the subject's end is found by rules (a pronoun, a run of capitalised words, a word the
lexicon below knows as a verb, a participle, an adverb, a second noun phrase). When no rule finds it, the answer
is None and the refusal stays the plain "The article does not say." A wrong clause read by staff is worse than
none, so the rules stop rather than guess.
"""

from __future__ import annotations

import re

_BE = frozenset({"is", "are", "was", "were", "am"})
_HAVE = frozenset({"has", "have", "had"})
_DO = frozenset({"do", "does", "did"})
_MODAL = frozenset({"can", "could", "will", "would", "should", "may", "might", "must", "shall"})
_AUX = _BE | _HAVE | _DO | _MODAL
_PREPOSITIONS = frozenset({"in", "on", "at", "from", "to", "for", "by", "with", "of", "since", "until", "into", "about",
                           "over", "under", "after", "before", "during", "against", "between", "through", "across",
                           "around", "near", "toward", "towards", "within", "without", "upon", "off", "as", "via", "per",
                           "among", "behind", "beyond", "despite", "inside", "outside", "onto", "than"})
_FUNCTION = frozenset({"and", "or", "but", "nor", "so", "then", "not", "also", "only", "even", "very", "more", "most",
                       "less", "least", "much", "many", "such", "same", "own", "due", "able", "likely", "sure", "ready",
                       "worth", "if", "whether", "because", "while", "although", "though", "unless", "de", "da", "del",
                       "di", "du", "la", "le", "van", "von", "al", "bin", "ibn", "y"})
_PRONOUNS = frozenset({"i", "you", "he", "she", "it", "we", "they", "there", "anyone", "anybody", "someone",
                       "somebody", "everyone", "everybody", "anything", "something", "nobody", "police", "this", "that",
                       "itself", "himself", "herself", "themselves", "myself", "yourself", "ourselves"})
_DETERMINERS = frozenset({"the", "a", "an", "this", "that", "these", "those", "its", "his", "her", "their", "our",
                          "my", "your", "any", "some", "no", "every", "each", "all", "both", "another", "other"})
_ADVERBS = frozenset({"still", "not", "never", "already", "also", "now", "currently", "ever", "really", "yet", "being",
                      "been", "going", "able", "likely", "expected", "allowed", "supposed", "finally", "just"})
_PARTICIPLE = re.compile(r"^(\w{2,}ed|\w{3,}(?:en|wn)|led|fed|wed|made|paid|found|held|kept|said|told|hurt|shut|set|put|cut|hit|"
                         r"open|closed|involved|guilty|true|false|alive|dead|safe|responsible|available|public|done|"
                         r"gone|seen|run|come|become|begun|brought|bought|caught|taught|thought|sent|spent|built|"
                         r"left|lost|meant|met|sold|stood|understood|won|fled|struck|hung|sought|heard|born|borne)$")
# words in -ed or -en that are not participles
_NOT_PARTICIPLES = frozenset("need needs speed seed feed greed weed deed breed hundred indeed children women men garden "
                             "citizen citizens kitchen screen teen teens queen green even often token oxygen sudden eleven "
                             "seven fifteen sixteen seventeen eighteen nineteen thirteen fourteen linen heaven haven "
                             "warden burden chicken between".split())
# -ing words that are nouns, not a verb's -ing form ("the building", "the meeting")
_ING_NOUNS = re.compile(r"^(build|meet|fund|ceil|wedd|morn|even|feel|paint|hous|train|spend|rul|hear|sett|end|open|"
                        r"offer|find|warn|shoot|bomb|rat|read|k|th|noth|someth|anyth|everyth|str|spr|r|w|sibl|tim|"
                        r"brief|record|rank|fil|land|bear|cloth|pudd|sibl|sp|cl|bl)ing$")
# adverbs between the subject and the verb ("did COPA first hear", "did the officer ever work")
_VERB_ADVERBS = frozenset({"first", "ever", "also", "actually", "originally", "initially", "ultimately", "finally",
                           "really", "already", "still", "never", "not", "just", "later", "then", "eventually"})
_IRREGULAR_PAST = {
    "be": "was", "have": "had", "do": "did", "say": "said", "make": "made", "go": "went", "come": "came",
    "take": "took", "know": "knew", "find": "found", "give": "gave", "tell": "told", "get": "got", "leave": "left",
    "begin": "began", "see": "saw", "hear": "heard", "pay": "paid", "run": "ran", "hold": "held", "bring": "brought",
    "buy": "bought", "think": "thought", "lose": "lost", "send": "sent", "win": "won", "become": "became",
    "write": "wrote", "speak": "spoke", "meet": "met", "put": "put", "set": "set", "cost": "cost", "hit": "hit",
    "let": "let", "cut": "cut", "lead": "led", "feel": "felt", "keep": "kept", "spend": "spent", "build": "built",
    "fall": "fell", "rise": "rose", "choose": "chose", "catch": "caught", "teach": "taught", "fight": "fought",
    "sell": "sold", "stand": "stood", "understand": "understood", "break": "broke", "drive": "drove", "eat": "ate",
    "grow": "grew", "draw": "drew", "throw": "threw", "fly": "flew", "wear": "wore", "forget": "forgot",
    "hide": "hid", "shoot": "shot", "steal": "stole", "strike": "struck", "sit": "sat", "sleep": "slept",
    "flee": "fled", "seek": "sought", "mean": "meant", "quit": "quit", "shut": "shut", "hurt": "hurt",
    "spread": "spread", "read": "read", "lend": "lent", "bear": "bore", "forbid": "forbade", "arise": "arose",
    "undergo": "underwent", "withdraw": "withdrew", "overtake": "overtook", "hang": "hung", "bet": "bet",
}
# base forms of common verbs that are rarely a noun right after a subject ("did the mayor SAY"); a verb that is
# often a noun too ("report", "plan") is found by the word after it instead
_VERBS = frozenset(set(_IRREGULAR_PAST) | set(
    "happen start end stop finish close open move return comment respond react reply answer ask want need try use "
    "decide agree refuse admit deny confirm claim announce explain describe mention identify investigate arrest "
    "charge fire suspend accuse allege release receive learn assign contact reach call live stay work die kill "
    "occur appear remain continue plan hope expect believe include involve affect cause help allow require "
    "change increase decrease fund house provide serve handle solve prove suggest show look seem turn "
    "add talk testify vote sign pass create destroy launch join own hire notify inform warn "
    "arrive leave travel attend file sue settle apologize resign retire complain discover report brief".split()))


def _past(verb: str) -> str:
    low = verb.lower()
    if low in _IRREGULAR_PAST:
        return _IRREGULAR_PAST[low]
    if low.endswith("e"):
        return verb + "d"
    if re.search(r"[^aeiou]y$", low):
        return verb[:-1] + "ied"
    if re.fullmatch(r"[^aeiou]*[aeiou][bdgmnpt]", low):  # stop -> stopped, plan -> planned (one short syllable)
        return verb + verb[-1] + "ed"
    return verb + "ed"


def _third_person(verb: str) -> str:
    low = verb.lower()
    special = {"have": "has", "do": "does", "go": "goes", "be": "is"}
    if low in special:
        return special[low]
    if re.search(r"(s|x|z|ch|sh|o)$", low):
        return verb + "es"
    if re.search(r"[^aeiou]y$", low):
        return verb[:-1] + "ies"
    return verb + "s"


def _is_participle_or_ing(word: str) -> bool:
    low = word.lower()
    if word[:1].isupper() or low in _NOT_PARTICIPLES:
        return False  # "Kersten", "women"
    return bool(_PARTICIPLE.match(low)) or (low.endswith("ing") and len(low) > 4 and not _ING_NOUNS.match(low))


def _capitalised_run(rest: list[str]) -> int:
    """How many leading words form a name ("COPA", "Andrea Kersten", "Bureau of Internal Affairs"), 0 if none."""
    n = 0
    while n < len(rest) and (rest[n][:1].isupper() or rest[n][:1].isdigit() or
                             (rest[n].lower() in ("of", "the") and n + 1 < len(rest) and rest[n + 1][:1].isupper() and n)):
        n += 1
    return n


def _bare_verb(word: str) -> bool:
    """Could be the bare verb after do-support or a modal: lower case, a word, not an inflected form."""
    low = word.lower()
    if not word[:1].islower() or not low.replace("-", "").isalpha() or low in _PREPOSITIONS or low in _DETERMINERS \
            or low in _FUNCTION or low in _PRONOUNS:
        return False
    if low in _VERBS:
        return True
    return not _is_participle_or_ing(low) and not re.search(r"[^su]s$", low)  # not "added", "begins"


_NUMBERS = frozenset("one two three four five six seven eight nine ten dozen hundred thousand several few many".split())
_CLAUSE_WORDS = frozenset({"that", "which", "who", "whom", "whose", "than", "when", "where", "while", "because", "if"})


def _verb_position(rest: list[str]) -> int | None:
    """Where the bare verb follows the subject in "did/will <subject> <verb> ...": the subject is a pronoun, a name,
    or a noun phrase ending before a known verb (or before a word followed by a function word or the end)."""
    if not rest:
        return None
    if rest[0].lower() in _PRONOUNS - {"this", "that"} and len(rest) > 1:
        return 1
    name = _capitalised_run(rest)
    if name and name < len(rest) and rest[name].lower() in _VERBS | _VERB_ADVERBS \
            and not rest[name - 1].lower().endswith(("'s", "’s")):
        return name  # "did COPA learn", "did Andrea Kersten say" (not "Kersten's office")
    for i in range(1, len(rest)):
        word, before = rest[i].lower(), rest[i - 1].lower()
        if before in _DETERMINERS or before in _PREPOSITIONS or before.endswith(("'s", "’s")) or word in _CLAUSE_WORDS:
            continue  # a determiner's or a preposition's word is a noun ("the report", "of migrants")
        if word in _VERBS and rest[i][:1].islower():
            return i
    # no known verb: judge each word by what follows it. Before an object (a determiner, a pronoun), the end, an
    # adverb, a particle or a stranded preposition a word is most likely the verb (the first such); else before a
    # preposition, the last such ("did Karlen and Singer present to the US senate"); else the last word ("did the
    # documentary Undercover Mosque air"); else before a name or number, the first
    strong, weak, last, names = None, None, None, None
    for i in range(1, len(rest)):
        word, before = rest[i].lower(), rest[i - 1].lower()
        if before in _DETERMINERS or before in _PREPOSITIONS or before.endswith(("'s", "’s")) or not _bare_verb(rest[i]):
            continue
        after = rest[i + 1] if i + 1 < len(rest) else None
        low = after.lower() if after else None
        if after is None:
            last = i
        elif low in _DETERMINERS or low in _PRONOUNS or low in _CLAUSE_WORDS or low.endswith("ly") \
                or low in ("up", "out", "off", "down", "back", "away", "what") or (low in _PREPOSITIONS and i + 2 == len(rest)):
            strong = i if strong is None else strong
        elif low in _PREPOSITIONS and low != "of":
            weak = i
        elif after[:1].isupper() or after[:1].isdigit():
            names = i if names is None else names
    return next((i for i in (strong, weak, last, names) if i is not None), None)


def _subject_end(rest: list[str], yes_no: bool = True) -> int | None:
    """Where the predicate starts in "is/has/<subject> <predicate>": a participle or -ing verb, an adverb, or a
    second noun phrase ("Is the officer | a suspect"); None when the whole rest is the subject. In a wh-question
    an -ing word starts the predicate only at the end or as "being"/"going" ("what was FOX 32 reporting", not
    "what is the duty of a pharmacy | filling prescriptions")."""
    if rest and rest[0].lower() in _PRONOUNS - {"this", "that"}:
        end = 2 if len(rest) > 1 and rest[1].lower() == "else" else 1  # "anybody else"
        return end if len(rest) > end else None
    if len(rest) > 1 and rest[0].lower() in ("this", "that") and rest[1].lower() in _DETERMINERS:
        return 1  # "is that | the 10th District station"
    name = _capitalised_run(rest)
    start = max(name, 1)
    last, before_last = rest[-1].lower(), rest[-2].lower() if len(rest) > 1 else ""
    if len(rest) >= max(3, start + 2) and last in _PREPOSITIONS and _PARTICIPLE.match(before_last) \
            and _is_participle_or_ing(rest[-2]) and rest[-3].lower() not in _DETERMINERS:
        end = len(rest) - 2  # "what are engines using four stages | known as"
        while end > start and rest[end - 1].lower() in _ADVERBS:
            end -= 1
        return end
    if len(rest) > start and _is_participle_or_ing(rest[-1]) and before_last not in _DETERMINERS:
        end = len(rest) - 1  # "when were the case tracking numbers | issued": the last word, when it is a verb
        while end > start and rest[end - 1].lower() in _ADVERBS:
            end -= 1  # "is the investigation | still closed"
        return end
    for i in range(start, len(rest)):
        word, before = rest[i].lower(), rest[i - 1].lower()
        if before in _DETERMINERS or before in _PREPOSITIONS or before.endswith(("'s", "’s", "est")) \
                or before in ("most", "more", "very", "less", "least") or (i != name and (before in _NUMBERS or before[:1].isdigit())):
            continue  # "the accused officer", "the two tracking numbers": an adjective; "a way of referring": a gerund
        in_phrase = any(w.lower() in _PREPOSITIONS for w in rest[:i])  # "the obligation of a pharmacy filling ..."
        ing = word.endswith("ing") and word not in ("being", "going")
        if word.endswith("est") and len(word) > 5 and not yes_no:
            return i  # "where is the Asian influence | strongest"
        if word in _ADVERBS or (_is_participle_or_ing(rest[i]) and
                                (yes_no or not ing or i == len(rest) - 1 or not in_phrase or i == name)):
            return i
        if yes_no and word in _DETERMINERS - {"that", "this"} and not in_phrase \
                and "to" not in (w.lower() for w in rest[:i]):
            return i  # "Is the officer | a suspect", "Was Kersten | the one who ..." (not "the way to measure | the Rhine")
        if name and i == name and word in _PREPOSITIONS and word != "of":
            return i  # "Is COPA | in charge"
    return None


def _declarative(aux: str, rest: list[str], yes_no: bool = True) -> str | None:
    """"did" + ["the", "mayor", "say", "it"] -> "the mayor said it"; "are" + ["the", "migrants", "being", "moved"]
    -> "the migrants are being moved"; None when the subject's end cannot be found."""
    if aux in _DO or aux in _MODAL:
        v = _verb_position(rest)
        if v is None:
            return None
        first_adverb = v
        while first_adverb > 1 and rest[first_adverb - 1].lower() in _VERB_ADVERBS:
            first_adverb -= 1  # "did the officer not report": "not" found before the verb
        while rest[v].lower() in _VERB_ADVERBS and v + 1 < len(rest):
            v += 1  # "did COPA first hear" -> "COPA first heard"
        subject, adverbs, verb, tail = rest[:first_adverb], rest[first_adverb:v], rest[v], rest[v + 1:]
        if not _bare_verb(verb) or any(w.lower() in _AUX or w.lower() in _CLAUSE_WORDS for w in subject[1:]):
            return None  # "does the branch begins as" (the question's own slip), or a clause inside the subject
        if aux in _MODAL or "not" in (w.lower() for w in adverbs):
            # "might a physician never diagnose" -> "a physician might never diagnose"; "did X not report" -> "X did not report"
            return " ".join(subject + [aux] + adverbs + [verb] + tail)
        verb = _past(verb) if aux == "did" else _third_person(verb) if aux == "does" else verb
        return " ".join(subject + adverbs + [verb] + tail)
    end = _subject_end(rest, yes_no)
    subject = rest if end is None else rest[:end]
    if any(w.lower() in _AUX or w.lower() == "like" or
           (w.lower() in _CLAUSE_WORDS and subject[i].lower() not in _PREPOSITIONS) for i, w in enumerate(subject[1:])):
        return None  # "consumption inequality lower than it had been": no safe place for the verb
    if end is None:
        if yes_no:
            return None  # "is the investigation over yet": the subject's end is unknown
        while len(rest) > 1 and rest[-1].lower() in _FILLERS:
            rest = rest[:-1]  # "whats the mayors name anyway" -> "what the mayors name is"
        trailing = _trailing_adverbs(rest)
        if trailing:  # "how long were the migrants there" -> "the migrants were there"; "who was there"
            return " ".join(rest[:-trailing] + [aux] + rest[-trailing:])
        if rest[-1].lower() in _PREPOSITIONS:  # "where is Audra McDonald from" -> "Audra McDonald is from"
            # after a long noun phrase the verb's place is unknown ("X of Y dependent on" wants "X of Y is dependent on")
            plain = len(rest) <= 5 and not any(w.lower() in _PREPOSITIONS for w in rest[:-1])
            return " ".join(rest[:-1] + [aux, rest[-1]]) if plain or _capitalised_run(rest) == len(rest) - 1 else None
        return " ".join(rest + [aux])  # "the name of the accused officer is"
    return " ".join(rest[:end] + [aux] + rest[end:])


_CONTRACTIONS = re.compile(r"^(what|who|where|when|how|why)(?:['’]s|s)\b", re.IGNORECASE)
_WH = frozenset({"who", "whom", "whose", "what", "which", "where", "when", "why", "how"})


def _noun_phrase(words: list[str]) -> bool:
    """Whether the words between a wh-word and the auxiliary read as its noun ("type of medicine", "year")."""
    return 0 < len(words) <= 5 and not any(
        w.lower() in _CLAUSE_WORDS or w.lower() in _AUX or (w.lower() in _VERBS and w.lower() not in ("name", "cost"))
        or _is_participle_or_ing(w) for w in words)


_FILLERS = {"anyway", "exactly", "actually"}  # said in chat, not part of what is asked
_TRAILING = {"there", "here", "now", "then", "today", "yet", "again", "originally", "still"}


def _trailing_adverbs(words: list[str]) -> int:
    """How many words at the end are an adverb of place or time the verb goes before ("there", "so far")."""
    low = [w.lower() for w in words]
    if low[-2:] == ["so", "far"]:
        return 2
    return 1 if low and low[-1] in _TRAILING else 0


def missing_fact(question: str) -> str | None:
    """What a question asks, as a clause for "The article does not say ___": "Was the officer fired?" ->
    "whether the officer was fired"; "Who made the report?" -> "who made the report"; "What did the mayor say?" ->
    "what the mayor said". None when the question has another shape (the refusal is then the plain one)."""
    q = " ".join(question.strip().rstrip("?.! ").split())
    if not q or "(" in q or "," in q or re.search(r"n['’]t\b", q, re.IGNORECASE):
        return None
    if re.search(r"\b([Ii]|[Mm]e|[Mm]y|[Yy]ou|[Yy]our|[Ww]e|us|Us|[Oo]ur)\b", q):  # "US" is a country
        return None  # "how do I reverse a list", "do we know": a request to the service, not a fact to name
    q = _CONTRACTIONS.sub(lambda m: f"{m.group(1)} is", q)
    words = q.split()
    words[0] = words[0].lower() if not words[0].isupper() or len(words[0]) == 1 else words[0]
    first = words[0].lower()
    lead: list[str] = []
    if first in _PREPOSITIONS and len(words) > 2 and words[1].lower() in _WH:
        lead, words = [first, words[1].lower()], words[2:]  # "In which district did it happen"
    elif first in _WH:
        lead, words = [first], words[1:]
    if not lead:  # a yes/no question
        if first not in _AUX or len(words) < 3:
            return None
        clause = _declarative(first, words[1:])
        return f"whether {clause}" if clause else None
    wh = lead[-1]
    # the wh-phrase: "how many officers", "what type of medicine", "which district", "whose phone", "how old"
    aux_at = next((i for i, w in enumerate(words) if w.lower() in _AUX), None)
    if wh in ("what", "which", "whose") or (wh == "how" and words[:1] and words[0].lower() in ("many", "much")):
        if aux_at and _noun_phrase(words[:aux_at]):
            lead, words = lead + words[:aux_at], words[aux_at:]
    elif wh == "how" and words and words[0].lower() not in _AUX and words[0].lower() not in ("many", "much"):
        lead, words = lead + words[:1], words[1:]
    if not words:
        return None  # "Why?", "How come?"
    aux, rest = words[0].lower(), words[1:]
    if aux not in _AUX:
        # the wh-phrase is the subject: "who made the report", "which officer was accused", "what happened"
        subject_wh = wh in ("who", "what", "which", "whose") or "many" in lead or "much" in lead \
            or (wh == "how" and words[0].lower() in ("many", "much"))
        if any(w.lower() in _DO for w in words) or lead[0] in _PREPOSITIONS:
            return None  # "what political leaning does X have": the wh-phrase was not found whole
        return " ".join(lead + words) if subject_wh else None
    if not rest:
        return " ".join(lead + words)  # "who was", "what is"
    noun_phrase_next = (rest[0].lower() in _DETERMINERS | _PRONOUNS | _NUMBERS | {"most", "much"} or rest[0][:1].isupper()
                        or rest[0][:1].isdigit()
                        or rest[0].lower().endswith(("'s", "’s")) or wh not in ("who", "what", "which", "whose")
                        or (len(rest) > 1 and _is_participle_or_ing(rest[-1]) and rest[-1].lower().endswith("ing"))) \
        and not (rest[0].lower() in _PREPOSITIONS and (len(lead) > 1 or wh in ("who", "what")))  # "how many were in X"
    passive_end = len(rest) >= 3 and (_is_participle_or_ing(rest[-1]) and not rest[-1].lower().endswith("ing") or
                                      rest[-1].lower() in _PREPOSITIONS and _is_participle_or_ing(rest[-2]))
    noun_phrase_next = noun_phrase_next or (aux in _BE and passive_end)  # "what duties are pharmacy staff limited to"
    subject_question = _is_participle_or_ing(rest[0]) or rest[0].lower() in _ADVERBS or \
        (aux in _MODAL | _DO and rest[0].lower() in _VERBS and rest[0].lower() not in _PRONOUNS and rest[0][:1].islower()) \
        or (aux in _BE and not noun_phrase_next) or (aux in _BE and len(rest) == 1 and len(lead) > 1) \
        or (aux in _HAVE and not any(w.lower() == "been" or (_is_participle_or_ing(w) and not w.lower().endswith("ing"))
                                     for w in rest))  # "what has a negative influence", "which office had staff passing"
    if aux in _DO:
        subject_question = rest[0].lower() == "not"  # "who does not define ..."; else do-support ("what do X emphasize")
    if subject_question and lead[0] in _PREPOSITIONS:
        return None  # "by what year was selling children ... uncommon": no subject question after a preposition
    if subject_question and (wh in ("who", "what", "which", "whose") or "many" in lead or "much" in lead):
        return " ".join(lead + words)  # "who is leading the investigation", "which officer was accused"
    clause = _declarative(aux, rest, yes_no=False)
    if clause is None:
        return " ".join(lead + words) if aux in _DO and wh in ("who", "what") and len(rest) == 1 else None  # "who did it"
    return " ".join(lead + [clause])
