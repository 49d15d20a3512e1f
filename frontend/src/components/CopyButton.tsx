import { useEffect, useState } from "react";

async function copyText(text: string): Promise<void> {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Plain-HTTP origins have no async clipboard.
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.appendChild(area);
  area.select();
  const ok = document.execCommand("copy");
  area.remove();
  if (!ok) throw new Error("copy failed");
}

/** `label` names the button for assistive technology; the visible text stays short. */
export function CopyButton({ text, label = "Copy", visible = "Copy" }: { text: string; label?: string; visible?: string }) {
  const [state, setState] = useState<"idle" | "copied" | "failed">("idle");
  useEffect(() => {
    if (state === "idle") return;
    const t = setTimeout(() => setState("idle"), 2500);
    return () => clearTimeout(t);
  }, [state]);
  return (
    <button
      type="button"
      className={`copy ${state}`}
      data-state={state}
      aria-label={`${label}: ${text.length > 60 ? text.slice(0, 60) + "…" : text}`}
      onClick={() => copyText(text).then(() => setState("copied"), () => setState("failed"))}
    >
      <span aria-live="polite">{state === "copied" ? "Copied" : state === "failed" ? "Copy failed" : visible}</span>
    </button>
  );
}

export function CodeLine({ text, label }: { text: string; label?: string }) {
  return (
    <div className="codeline">
      <code>{text}</code>
      <CopyButton text={text} label={label} />
    </div>
  );
}
